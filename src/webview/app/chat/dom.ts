/**
 * The one way the chat app builds DOM: elements with text set through text nodes, attributes through
 * `setAttribute` (never `style` or event attributes), listeners through `addEventListener`. No HTML strings,
 * so nothing an agent writes can become markup.
 */
export type Child = Node | string | undefined | null | false;

export interface Props {
	class?: string;
	attrs?: Record<string, string | undefined>;
	on?: { [K in keyof HTMLElementEventMap]?: (e: HTMLElementEventMap[K]) => void };
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
	const el = document.createElement(tag);
	if (props.class) {
		el.className = props.class;
	}
	for (const [name, value] of Object.entries(props.attrs ?? {})) {
		if (value !== undefined && name !== 'style' && !name.startsWith('on')) {
			el.setAttribute(name, value);
		}
	}
	for (const [type, fn] of Object.entries(props.on ?? {})) {
		el.addEventListener(type, fn as EventListener);
	}
	append(el, ...children);
	return el;
}

export function append(el: Element, ...children: Child[]): void {
	for (const c of children) {
		if (c === undefined || c === null || c === false) {
			continue;
		}
		el.append(typeof c === 'string' ? document.createTextNode(c) : c);
	}
}

/** Fills `{0}`, `{1}`… in a translated string. */
export function format(template: string, ...args: (string | number)[]): string {
	return template.replace(/\{(\d+)\}/g, (m, i: string) => (args[Number(i)] !== undefined ? String(args[Number(i)]) : m));
}

let nextId = 0;
export function uniqueId(prefix: string): string {
	nextId += 1;
	return `${prefix}-${nextId}`;
}
