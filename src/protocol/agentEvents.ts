/**
 * The one event union every backend emits (ACP, opencode server, Claude stream-json). Transport-agnostic:
 * paths are relative to the worktree where the backend knows them, and anything a backend sends that we do
 * not model yet arrives as `raw`, never dropped.
 */

export type ToolKind = 'read' | 'edit' | 'delete' | 'move' | 'search' | 'execute' | 'think' | 'fetch' | 'switch_mode' | 'other';
export type ToolStatus = 'pending' | 'in_progress' | 'completed' | 'failed';

export interface ToolLocation {
	path: string;
	line?: number;
}

export type ToolContent =
	| { type: 'text'; text: string }
	| { type: 'diff'; path: string; oldText: string | null; newText: string }
	| { type: 'terminal'; terminalId: string }
	| { type: 'other'; value: unknown };

export interface PlanEntry {
	content: string;
	priority: 'high' | 'medium' | 'low';
	status: 'pending' | 'in_progress' | 'completed';
}

export interface SlashCommand {
	name: string;
	description: string;
	hint?: string;
}

export interface PermissionOption {
	optionId: string;
	name: string;
	kind: 'allow_once' | 'allow_always' | 'reject_once' | 'reject_always';
}

/** A session setting the agent offers (ACP `SessionConfigOption`); grouped select values come flattened. */
export interface ConfigOption {
	id: string;
	name: string;
	/** What the setting does, in the agent's words (the picker's tooltip). */
	description?: string;
	/** `mode`, `model`, `thought_level`, `model_config`, or the agent's own (`_`-prefixed) category. */
	category?: string;
	type: 'select' | 'boolean';
	currentValue: string | boolean;
	options?: { value: string; name: string }[];
}

/** The option through which the mode is set, when the agent offers it so (newer ACP API). */
export function modeConfigOption(options: readonly ConfigOption[]): ConfigOption | undefined {
	return options.find((o) => o.type === 'select' && o.category === 'mode');
}

/** The option through which the model is set, when the agent offers it so (newer ACP API): the model picker's. */
export function modelConfigOption(options: readonly ConfigOption[]): ConfigOption | undefined {
	return options.find((o) => o.type === 'select' && (o.category === 'model' || o.id === 'model'));
}

export type FileEditSource = 'fs_write' | 'tool_diff' | 'watcher';

export type AgentEvent =
	| { type: 'text'; text: string; messageId?: string }
	| { type: 'reasoning'; text: string; messageId?: string }
	/** History the agent replays on `session/load`. */
	| { type: 'user_text'; text: string }
	| { type: 'tool_call'; toolCallId: string; title: string; kind?: ToolKind; status?: ToolStatus; locations?: ToolLocation[]; content?: ToolContent[]; rawInput?: unknown }
	| { type: 'tool_update'; toolCallId: string; title?: string; kind?: ToolKind; status?: ToolStatus; locations?: ToolLocation[]; content?: ToolContent[]; rawOutput?: unknown }
	| { type: 'plan'; entries: PlanEntry[] }
	| { type: 'commands'; commands: SlashCommand[] }
	| { type: 'usage'; usedTokens?: number; contextSize?: number; inputTokens?: number; outputTokens?: number; cost?: { amount: number; currency: string } }
	| { type: 'permission_request'; requestId: string; title: string; toolCallId?: string; kind?: ToolKind; options: PermissionOption[] }
	| { type: 'permission_decision'; requestId: string; outcome: 'selected' | 'cancelled'; optionId?: string; decidedBy: 'user' | 'policy' | 'timeout' | 'cancel' }
	| { type: 'file_edit'; path: string; kind: 'add' | 'modify' | 'delete'; source: FileEditSource; toolCallId?: string }
	| { type: 'mode'; modeId: string; available?: { id: string; name: string }[] }
	| { type: 'model'; modelId: string; available?: { id: string; name: string }[] }
	| { type: 'config'; options: ConfigOption[] }
	| { type: 'session_info'; title?: string }
	| { type: 'notice'; severity: 'info' | 'warning' | 'error'; title: string; description?: string }
	/**
	 * The agent compacting its context (ACP `compaction_update` and `compaction_summary_chunk`), one per update:
	 * the transcript folds those of one `compactionId` into one notice. `summary` replaces the summary (null
	 * clears it), `summaryChunk` appends to it; `error` as `summary`. A field left out leaves it as it was.
	 */
	| { type: 'compaction'; compactionId: string; status?: string; summary?: string | null; summaryChunk?: string; error?: string | null }
	| { type: 'error'; message: string; code?: string }
	| { type: 'raw'; method: string; payload: unknown };

export type StopReason = 'end_turn' | 'max_tokens' | 'max_turn_requests' | 'refusal' | 'cancelled' | 'error' | 'interrupted';

export interface TurnUsage {
	inputTokens?: number;
	outputTokens?: number;
	costUsd?: number;
}

export interface TurnResult {
	stopReason: StopReason;
	usage?: TurnUsage;
	/** The backend's own session id, for resume. */
	backendSessionId: string;
	error?: string;
}
