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
