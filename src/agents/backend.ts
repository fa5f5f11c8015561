import type { Event } from '../common/event';
import type { SecretRedactor } from '../common/redact';
import type { IDisposable } from '../common/lifecycle';
import type { AgentDefinition } from './definitions';
import type { AgentEvent, TurnResult } from '../protocol/agentEvents';
import type { PromptInput } from '../protocol/turns';
import type { PermissionBroker } from './permissions';

export interface McpServerSpec {
	name: string;
	command: string;
	args: string[];
	env: Record<string, string>;
}

export interface EnsureSessionOptions {
	/** The session's worktree: the agent's cwd and the only place it may write. */
	cwd: string;
	definition: AgentDefinition;
	/**
	 * The whole environment of the agent process and its terminals (see `agentEnvironment`): nothing else from
	 * the host is added. Without it, the agent gets `agentEnvironment(definition, process.env)`.
	 */
	env?: Record<string, string>;
	/** Scrubs known secret values from what the backend logs and returns to the agent as tool output. */
	redactor?: SecretRedactor;
	mcpServers?: McpServerSpec[];
	/** An earlier backend session to load or resume, when the agent supports it. */
	resumeSessionId?: string;
	permissions: PermissionBroker;
	/** Which chat and agent this is, for permission requests and logs. */
	chatId: string;
	/**
	 * The settings the chat's agent had when it last ran (idle timeout, crash, reload): put back once the session
	 * is set up, instead of the definition's defaults, where the agent still offers them.
	 */
	restoreSettings?: AgentSettings;
}

/** A chat's agent settings, as the agent reported them: its mode, its model and its config options' values. */
export interface AgentSettings {
	modeId?: string;
	modelId?: string;
	options?: Record<string, string | boolean>;
}

/** Per-turn callbacks. */
export interface TurnContext {
	turnId: string;
	onEvent(event: AgentEvent): void;
	/**
	 * The agent asked the client for something during the turn (a file, a terminal, its exit, a permission):
	 * work under way that no event shows. Called when the request comes; the returned function when it is answered.
	 */
	onClientRequest?(): () => void;
	/**
	 * Resolves once every event given so far is on disk. A write the agent asked for is answered only then: an
	 * acknowledged edit keeps its attribution through a crash of the host right after.
	 */
	recorded?(): Promise<void>;
}

export interface SessionCapabilities {
	loadSession: boolean;
	resume: boolean;
	images: boolean;
	embeddedContext: boolean;
}

/** One live agent context. */
export interface AgentSessionHandle extends IDisposable {
	readonly backendSessionId: string;
	readonly capabilities: SessionCapabilities;
	/** True when `ensureSession` loaded or resumed `resumeSessionId` (the agent kept its context). */
	readonly resumed: boolean;
	/** Fires when the agent process exits or the connection breaks, expectedly or not. */
	/** `endedAfterCancel`: ended by us because it did not stop when its turn was cancelled (the turn says so). */
	readonly onDidExit: Event<{ code: number | null; signal: string | null; expected: boolean; endedAfterCancel?: boolean }>;
	/** Events that arrive outside a turn (commands, usage, mode changes before the first prompt). */
	readonly onDidEmitIdleEvent: Event<AgentEvent>;
	prompt(input: PromptInput, ctx: TurnContext): Promise<TurnResult>;
	cancel(): Promise<void>;
	setMode?(modeId: string): Promise<void>;
	setModel?(modelId: string): Promise<void>;
	setConfigOption?(configId: string, value: string | boolean): Promise<void>;
	/** The settings as the agent last reported them (recorded once the session is set up). */
	currentSettings?(): AgentSettings;
	/** Fires with the whole settings whenever the agent's mode, model or an option changes, once it is set up. */
	readonly onDidChangeSettings?: Event<AgentSettings>;
	/** Ends the process: cancel, SIGTERM, SIGKILL after the grace period. Resolves when it is gone. */
	shutdown(): Promise<void>;
}

export interface AgentBackend {
	readonly transport: AgentDefinition['transport'];
	ensureSession(opts: EnsureSessionOptions): Promise<AgentSessionHandle>;
}
