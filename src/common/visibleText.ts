/**
 * Characters that change how text around them reads without showing themselves: controls, direction
 * overrides and isolates (U+202E turns `gpj.exe` into what reads as `exe.jpg`), zero-width characters, line
 * and paragraph separators. Letters of right-to-left scripts are not among them.
 */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const hidden = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;
// eslint-disable-next-line no-control-regex -- as above, with line breaks and tabs
const hiddenOnOneLine = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

/**
 * Text an agent names (a file, a tool call's title) as a person deciding on it should see it: what could
 * hide or reorder part of it written as `\u....`. `oneLine` also shows line breaks and tabs that way.
 */
export function revealHidden(text: string, oneLine = false): string {
	return text.replace(oneLine ? hiddenOnOneLine : hidden, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// eslint-disable-next-line no-control-regex -- as above: C0 controls but tab and line feed, DEL, C1 controls
const terminalControls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * Text for a terminal (the command line's output): every control character but tab and line feed written
 * as `\u....`. A terminal reads ESC and the C1 controls as commands: an agent's words could set the
 * clipboard (OSC 52), the window title, a link whose text hides where it goes (OSC 8), clear the screen or,
 * with a carriage return, write over what was printed before.
 */
export function forTerminal(text: string): string {
	return text.replace(terminalControls, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// eslint-disable-next-line no-control-regex -- DEL and the C1 controls, which JSON.stringify leaves as they are
const jsonUnescaped = /[\u007f-\u009f]/g;

/** One line of JSON for a terminal: JSON.stringify escapes C0 controls but not DEL nor C1 (0x9b is a CSI). */
export function jsonForTerminal(value: unknown): string {
	return JSON.stringify(value).replace(jsonUnescaped, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Text for a VS Code notification: VS Code shows `[label](https://…)`, `[label](command:…)` and
 * `[label](file:…)` in a notification's message as links, and runs a command link's command, with its
 * arguments, when it is clicked. Words an agent chose (a permission request's title, an error it caused)
 * could put an "Allow" link there that runs something else; `](` is written `] (`, which is no link.
 */
export function withoutLinks(text: string): string {
	return text.replace(/\]\(/g, '] (');
}
