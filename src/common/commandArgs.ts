/**
 * What a command handler gets instead of its first argument when a view's menu ran it on a row VS Code had
 * just forgotten: the view was refreshing, and VS Code passed `undefined` (microsoft/vscode#144250). The
 * command was meant for the one row the user clicked, so a handler asks which, and never falls back to the
 * active tab's chat or session as it does when run from the palette (which passes no argument at all).
 */
export const lostViewRow: unique symbol = Symbol('lostViewRow');

/** The arguments a handler gets: a leading `undefined` (a forgotten row) becomes `lostViewRow`. */
export function viewRowArgs(args: readonly unknown[]): unknown[] {
	return args.length > 0 && args[0] === undefined ? [lostViewRow, ...args.slice(1)] : [...args];
}
