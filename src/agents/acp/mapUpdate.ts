import type { AgentEvent, ConfigOption, PlanEntry, ToolContent, ToolKind, ToolLocation, ToolStatus } from '../../protocol/agentEvents';

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
/** A count (tokens, a context's size): a negative or fractional one is an agent's mistake, shown as unknown. */
const count = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);
/** A line an agent names something with (a session title, a command, its hint): bounded, as a title is shown whole. */
const line = (v: string, max: number): string => (v.length > max ? `${v.slice(0, max - 1)}…` : v);
/** How many slash commands one update keeps: a list past that is an agent's fault, and each is offered in the tab. */
export const maxCommands = 500;

const toolKinds = new Set<ToolKind>(['read', 'edit', 'delete', 'move', 'search', 'execute', 'think', 'fetch', 'switch_mode', 'other']);
const toolStatuses = new Set<ToolStatus>(['pending', 'in_progress', 'completed', 'failed']);
/**
 * Statuses outside the spec that agents send for a call that has ended or runs: read as the nearest one, so a
 * call an agent calls "cancelled" shows as ended (and stops counting as running) instead of pending for ever.
 */
const toolStatusAliases: ReadonlyMap<string, ToolStatus> = new Map([
	['running', 'in_progress'],
	['cancelled', 'failed'],
	['canceled', 'failed'],
	['rejected', 'failed'],
	['error', 'failed'],
	['aborted', 'failed'],
	['done', 'completed'],
	['success', 'completed'],
]);

function contentText(block: unknown): string | undefined {
	if (!isObj(block)) {
		return undefined;
	}
	if (block.type === 'text') {
		return str(block.text);
	}
	if (block.type === 'resource_link') {
		return `[${str(block.name) ?? str(block.uri) ?? 'resource'}](${str(block.uri) ?? ''})`;
	}
	if (block.type === 'resource' && isObj(block.resource)) {
		return str(block.resource.text) ?? `[${str(block.resource.uri) ?? 'resource'}]`;
	}
	if (block.type === 'image' || block.type === 'audio') {
		return `[${block.type}]`;
	}
	return undefined;
}

function mapLocations(v: unknown): ToolLocation[] | undefined {
	if (!Array.isArray(v)) {
		return undefined;
	}
	return v.filter(isObj).flatMap((l) => (typeof l.path === 'string' ? [{ path: l.path, ...(num(l.line) !== undefined ? { line: num(l.line)! } : {}) }] : []));
}

function mapToolContent(v: unknown): ToolContent[] | undefined {
	if (!Array.isArray(v)) {
		return undefined;
	}
	return v.map((c): ToolContent => {
		if (isObj(c) && c.type === 'diff' && typeof c.path === 'string' && typeof c.newText === 'string') {
			return { type: 'diff', path: c.path, oldText: typeof c.oldText === 'string' ? c.oldText : null, newText: c.newText };
		}
		if (isObj(c) && c.type === 'terminal' && typeof c.terminalId === 'string') {
			return { type: 'terminal', terminalId: c.terminalId };
		}
		if (isObj(c) && c.type === 'content') {
			const text = contentText(c.content);
			if (text !== undefined) {
				return { type: 'text', text };
			}
		}
		return { type: 'other', value: c };
	});
}

function toolFields(u: Obj): Omit<Extract<AgentEvent, { type: 'tool_update' }>, 'type' | 'toolCallId'> {
	const out: Omit<Extract<AgentEvent, { type: 'tool_update' }>, 'type' | 'toolCallId'> = {};
	if (typeof u.title === 'string') {
		out.title = u.title;
	}
	if (typeof u.kind === 'string' && toolKinds.has(u.kind as ToolKind)) {
		out.kind = u.kind as ToolKind;
	}
	if (typeof u.status === 'string') {
		const status = toolStatuses.has(u.status as ToolStatus) ? (u.status as ToolStatus) : toolStatusAliases.get(u.status.toLowerCase());
		if (status) {
			out.status = status;
		}
	}
	const locations = mapLocations(u.locations);
	if (locations) {
		out.locations = locations;
	}
	const content = mapToolContent(u.content);
	if (content) {
		out.content = content;
	}
	if (u.rawOutput !== undefined) {
		out.rawOutput = u.rawOutput;
	}
	return out;
}

function mapConfigOptions(v: unknown): ConfigOption[] {
	if (!Array.isArray(v)) {
		return [];
	}
	return v.filter(isObj).flatMap((o): ConfigOption[] => {
		if (typeof o.id !== 'string' || (o.type !== 'select' && o.type !== 'boolean')) {
			return [];
		}
		const flat: { value: string; name: string }[] = [];
		if (Array.isArray(o.options)) {
			for (const opt of o.options.filter(isObj)) {
				if (typeof opt.value === 'string') {
					flat.push({ value: opt.value, name: str(opt.name) ?? opt.value });
				} else if (Array.isArray(opt.options)) {
					for (const inner of opt.options.filter(isObj)) {
						if (typeof inner.value === 'string') {
							flat.push({ value: inner.value, name: str(inner.name) ?? inner.value });
						}
					}
				}
			}
		}
		const description = str(o.description);
		return [{ id: o.id, name: str(o.name) ?? o.id, ...(description ? { description } : {}), category: str(o.category), type: o.type, currentValue: (o.currentValue as string | boolean) ?? '', options: flat }];
	});
}

/**
 * Maps one `session/update` payload (raw JSON, validated here field by field) to AgentEvents. A variant we
 * do not know, or a known one with an unusable shape, becomes a `raw` event: kept, never dropped.
 */
export function mapSessionUpdate(params: unknown): AgentEvent[] {
	const update = isObj(params) && isObj(params.update) ? params.update : undefined;
	const raw = (): AgentEvent[] => [{ type: 'raw', method: 'session/update', payload: params }];
	if (!update || typeof update.sessionUpdate !== 'string') {
		return raw();
	}
	switch (update.sessionUpdate) {
		case 'agent_message_chunk':
		case 'agent_thought_chunk':
		case 'user_message_chunk': {
			const text = contentText(update.content);
			if (text === undefined) {
				return raw();
			}
			const messageId = str(update.messageId);
			if (update.sessionUpdate === 'user_message_chunk') {
				return [{ type: 'user_text', text }];
			}
			return [{ type: update.sessionUpdate === 'agent_message_chunk' ? 'text' : 'reasoning', text, ...(messageId ? { messageId } : {}) }];
		}
		case 'tool_call': {
			if (typeof update.toolCallId !== 'string') {
				return raw();
			}
			const f = toolFields(update);
			return [{ type: 'tool_call', toolCallId: update.toolCallId, title: f.title ?? str(update.name) ?? 'Tool call', kind: f.kind, status: f.status, locations: f.locations, content: f.content, rawInput: update.rawInput }];
		}
		case 'tool_call_update': {
			if (typeof update.toolCallId !== 'string') {
				return raw();
			}
			return [{ type: 'tool_update', toolCallId: update.toolCallId, ...toolFields(update) }];
		}
		case 'plan': {
			if (!Array.isArray(update.entries)) {
				return raw();
			}
			const entries: PlanEntry[] = update.entries.filter(isObj).map((e) => ({
				content: str(e.content) ?? '',
				priority: e.priority === 'high' || e.priority === 'low' ? e.priority : 'medium',
				status: e.status === 'in_progress' || e.status === 'completed' ? e.status : 'pending',
			}));
			return [{ type: 'plan', entries }];
		}
		case 'available_commands_update': {
			if (!Array.isArray(update.availableCommands)) {
				return raw();
			}
			return [
				{
					type: 'commands',
					commands: update.availableCommands
						.filter(isObj)
						.slice(0, maxCommands)
						.map((c) => ({
							name: line(str(c.name) ?? '', 200),
							description: line(str(c.description) ?? '', 2000),
							...(isObj(c.input) && typeof c.input.hint === 'string' ? { hint: line(c.input.hint, 200) } : {}),
						})),
				},
			];
		}
		case 'current_mode_update':
			return typeof update.currentModeId === 'string' ? [{ type: 'mode', modeId: update.currentModeId }] : raw();
		case 'config_option_update':
			// The whole set replaces the chat's settings: one that is not a list would take every picker away.
			if (!Array.isArray(update.configOptions)) {
				return raw();
			}
			return [{ type: 'config', options: mapConfigOptions(update.configOptions) }];
		case 'session_info_update': {
			const title = str(update.title);
			const events: AgentEvent[] = [{ type: 'session_info', title: title === undefined ? undefined : line(title, 500) }];
			// codex-acp reports its model connection's trouble ("Reconnecting... 2/5") only here, in its own
			// `_meta`: shown, or a turn waiting on an unreachable model says nothing for minutes.
			const codex = isObj(update._meta) && isObj(update._meta.codex) ? update._meta.codex : undefined;
			const error = codex && isObj(codex.error) ? codex.error : undefined;
			const message = error ? str(error.message) : undefined;
			if (error && message) {
				events.push({ type: 'notice', severity: 'warning', title: message, description: str(error.additionalDetails) });
			}
			return events;
		}
		case 'usage_update': {
			const cost = isObj(update.cost) && num(update.cost.amount) !== undefined ? { amount: num(update.cost.amount)!, currency: str(update.cost.currency) ?? 'USD' } : undefined;
			return [{ type: 'usage', usedTokens: count(update.used), contextSize: count(update.size), ...(cost ? { cost } : {}) }];
		}
		case 'compaction_update': {
			if (typeof update.compactionId !== 'string') {
				return raw();
			}
			// Patch semantics: a field left out changes nothing, null clears it.
			const summary = Array.isArray(update.summary) ? update.summary.map((b) => contentText(b) ?? '').join('') : update.summary === null ? null : undefined;
			const error = typeof update.error === 'string' ? update.error : update.error === null ? null : undefined;
			return [
				{
					type: 'compaction',
					compactionId: update.compactionId,
					...(typeof update.status === 'string' ? { status: update.status } : {}),
					...(summary !== undefined ? { summary } : {}),
					...(error !== undefined ? { error } : {}),
				},
			];
		}
		case 'compaction_summary_chunk':
			return typeof update.compactionId === 'string' ? [{ type: 'compaction', compactionId: update.compactionId, summaryChunk: contentText(update.content) ?? '' }] : raw();
		case 'notice': {
			const severity = update.severity === 'warning' || update.severity === 'error' ? update.severity : 'info';
			return [{ type: 'notice', severity, title: str(update.title) ?? '', description: str(update.description) }];
		}
		default:
			return raw();
	}
}

/**
 * The tool call a `session/request_permission` carries (a `ToolCallUpdate`) as an event: a `tool_call` for a
 * call not announced before, else a `tool_update` with what the request says of it (none when it names only
 * the id). Undefined for a request without a usable tool call id.
 */
export function mapPermissionToolCall(toolCall: unknown, announced: boolean): AgentEvent | undefined {
	if (!isObj(toolCall) || typeof toolCall.toolCallId !== 'string') {
		return undefined;
	}
	const f = toolFields(toolCall);
	if (!announced) {
		return { type: 'tool_call', toolCallId: toolCall.toolCallId, title: f.title ?? 'Tool call', kind: f.kind, status: f.status, locations: f.locations, content: f.content, rawInput: toolCall.rawInput };
	}
	return Object.keys(f).length > 0 ? { type: 'tool_update', toolCallId: toolCall.toolCallId, ...f } : undefined;
}

export { mapConfigOptions };
