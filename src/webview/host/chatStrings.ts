import type * as vscode from 'vscode';
import type { ChatStrings } from '../../protocol/messages';

/** Only `vscode.l10n` is used; a type-only import, so tests build the same table without VS Code. */
export type VsCodeL10n = Pick<typeof vscode, 'l10n'>;

/**
 * The chat tab's strings, translated with `vscode.l10n` (passed in, so tests can build the same table
 * without VS Code; written as `vscode.l10n.t('…')` literals so `vscode-l10n-dev export` finds each one). A
 * placeholder `{0}` is passed through as itself (`vscode.l10n.t('…{0}', '{0}')`) and filled in by the app.
 */
export function chatStrings(vscode: VsCodeL10n): ChatStrings {
	const p0 = '{0}';
	const p1 = '{1}';
	return {
		transcript: vscode.l10n.t('Transcript'),
		you: vscode.l10n.t('You'),
		thinking: vscode.l10n.t('{0} (thinking)', p0),
		turn: vscode.l10n.t('Turn {0}', p0),
		statusIdle: vscode.l10n.t('Ready'),
		statusRunning: vscode.l10n.t('Working…'),
		statusWaiting: vscode.l10n.t('Waiting for your permission'),
		closedNote: vscode.l10n.t('This chat was closed; your next message starts a new conversation with the agent. The transcript is kept.'),
		rewind: vscode.l10n.t('Rewind to before this turn'),
		rewindPreview: vscode.l10n.t('Rewinding puts these files back as they were before turn {0}:', p0),
		rewindLaterTurns: vscode.l10n.t('This also undoes the file changes of {0} later turn(s). The transcript is kept.', p0),
		rewindLaterTurnsOtherChats: vscode.l10n.t("This also undoes the file changes of {0} later turn(s), {1} of them in this session's other chats (they share its worktree). The transcripts are kept.", p0, p1),
		rewindNoFiles: vscode.l10n.t('No file differs from before turn {0}; rewinding changes nothing.', p0),
		rewindConfirm: vscode.l10n.t('Rewind'),
		rewindDone: vscode.l10n.t('Rewound {0} file(s). What the rewind replaced is kept in {1}.', p0, p1),
		cancel: vscode.l10n.t('Cancel'),
		toolCall: vscode.l10n.t('Tool call'),
		plan: vscode.l10n.t('Plan'),
		permission: vscode.l10n.t('Permission request'),
		permissionShortcuts: vscode.l10n.t('On this card, press 1 to {0}; anywhere in the tab, Alt+A allows once and Alt+R rejects (unless your keyboard types a character for them).', p0),
		permissionNotYet: vscode.l10n.t('Waits until earlier requests are answered; then you can answer it.'),
		alreadyAnswered: vscode.l10n.t('Already answered.'),
		answered: vscode.l10n.t('Answered: {0}', p0),
		decidedByPolicy: vscode.l10n.t('Answered by your settings: {0}', p0),
		decidedByTimeout: vscode.l10n.t('Nobody answered in time, so the request was rejected.'),
		decidedByCancel: vscode.l10n.t('The request was cancelled.'),
		noLongerWaiting: vscode.l10n.t('The agent is no longer waiting for this answer.'),
		fileAdded: vscode.l10n.t('Added {0}', p0),
		fileModified: vscode.l10n.t('Changed {0}', p0),
		fileDeleted: vscode.l10n.t('Deleted {0}', p0),
		toolPending: vscode.l10n.t('pending'),
		toolRunning: vscode.l10n.t('running'),
		toolDone: vscode.l10n.t('done'),
		toolFailed: vscode.l10n.t('failed'),
		turnRunning: vscode.l10n.t('running'),
		turnDone: vscode.l10n.t('done'),
		turnCancelled: vscode.l10n.t('cancelled'),
		turnError: vscode.l10n.t('failed'),
		turnInterrupted: vscode.l10n.t('interrupted'),
		planPending: vscode.l10n.t('to do'),
		planInProgress: vscode.l10n.t('in progress'),
		planDone: vscode.l10n.t('done'),
		attachments: vscode.l10n.t('Attachments'),
		selectionOf: vscode.l10n.t('{0}, lines {1}', p0, p1),
		usage: vscode.l10n.t('Tokens: {0} in, {1} out', p0, p1),
		error: vscode.l10n.t('Error'),
		errorUnknown: vscode.l10n.t('The agent reported an error.'),
		permissionUntitled: vscode.l10n.t('The agent asks for permission'),
		retry: vscode.l10n.t('Retry'),
		rawEvent: vscode.l10n.t('The agent sent an update this view does not show ({0}).', p0),
		stopMaxTokens: vscode.l10n.t("The reply was cut off: the model reached its output limit. Ask the agent to continue if you need the rest."),
		stopMaxTurnRequests: vscode.l10n.t('The agent stopped: it reached its limit of model requests for one message. Send another message to let it go on.'),
		toolStopped: vscode.l10n.t('stopped with its turn'),
		compactionRunning: vscode.l10n.t('The agent is compacting its context (summarising the conversation so far).'),
		compactionDone: vscode.l10n.t('The agent compacted its context: it goes on from a summary of the conversation so far.'),
		compactionFailed: vscode.l10n.t('The agent could not compact its context.'),
		compactionCancelled: vscode.l10n.t('The agent stopped compacting its context.'),
		stopRefusal: vscode.l10n.t("The agent refused this message. It is not in the agent's context, so the agent will not remember it; rephrase it and send it again."),
		input: vscode.l10n.t('Message to {0}', p0),
		inputHint: vscode.l10n.t('Enter sends, Shift+Enter adds a line. Type / for commands, @ to mention a file.'),
		send: vscode.l10n.t('Send'),
		cancelTurn: vscode.l10n.t('Cancel Turn'),
		attachSelection: vscode.l10n.t('Attach Selection'),
		removeAttachment: vscode.l10n.t('Remove {0}', p0),
		mode: vscode.l10n.t('Mode'),
		model: vscode.l10n.t('Model'),
		queue: vscode.l10n.t('Queued messages'),
		queuedNote: vscode.l10n.t('Sent in order, once the turn running in this chat or its session ends.'),
		queuedEditMoved: vscode.l10n.t('That message was already sent as it was (or removed) before your edit was saved; your edited text is in the message box.'),
		edit: vscode.l10n.t('Edit'),
		remove: vscode.l10n.t('Remove'),
		save: vscode.l10n.t('Save'),
		suggestions: vscode.l10n.t('Suggestions'),
		loading: vscode.l10n.t('Loading…'),
		failed: vscode.l10n.t('Could not do that: {0}', p0),
		earlierFailed: vscode.l10n.t('The earlier part of this chat could not be shown: {0}', p0),
	};
}

/** `vscode.l10n` where there is no VS Code (tests, plain Node): English, with `{0}`… filled in. */
export const untranslated: VsCodeL10n = {
	l10n: {
		t: ((message: string, ...args: unknown[]) => message.replace(/\{(\d+)\}/g, (all, i: string) => (args[Number(i)] === undefined ? all : String(args[Number(i)])))) as VsCodeL10n['l10n']['t'],
	} as VsCodeL10n['l10n'],
};

/** What the chat service tells a tab (errors, notices), translated with `vscode.l10n` as `chatStrings` is. */
export function chatServiceStrings(vscode: VsCodeL10n) {
	return {
		noChat: (chatId: string) => vscode.l10n.t('There is no chat {0}; it may have been deleted with its session.', chatId),
		sendFailed: () => vscode.l10n.t('The message could not be sent.'),
		typeFirst: () => vscode.l10n.t('Type a message first.'),
		newContextAfterClose: () => vscode.l10n.t('This chat was closed earlier, so the agent starts a new conversation. The transcript above is kept.'),
		queueGone: () => vscode.l10n.t('That message was already sent or removed.'),
		queuedEmpty: () => vscode.l10n.t('A queued message cannot be empty; remove it instead.'),
		turnNotInChat: () => vscode.l10n.t('That turn is not part of this chat.'),
		noCheckpoint: (turn: number) => vscode.l10n.t('Turn {0} has no checkpoint to rewind to (the folder was not a git worktree when it ran).', turn),
		noFolderToRewind: (state: string | null) =>
			state === 'removed'
				? vscode.l10n.t("This chat's session is archived (its work is saved): restore it (Restore Session), then rewind.")
				: state === 'missing'
					? vscode.l10n.t("This chat's worktree folder is gone (deleted or moved outside Agent Tabs), so there is nothing to rewind.")
					: vscode.l10n.t('This chat has no worktree to rewind.'),
		turnRunning: () => vscode.l10n.t('A turn is running; cancel it or wait before rewinding.'),
		otherChatRunning: (names: string) => vscode.l10n.t("A turn of {0} is running in this session's worktree; wait for it or cancel it before rewinding.", names),
		rewound: (files: number, turn: number) => (files === 1 ? vscode.l10n.t('Rewound 1 file to before turn {0}.', turn) : vscode.l10n.t('Rewound {0} files to before turn {1}.', files, turn)),
		rewindKeptIn: (ref: string) => vscode.l10n.t('What the rewind replaced is kept in {0}.', ref),
		nothingToRetry: () => vscode.l10n.t('There is nothing to retry for that message.'),
		noModes: (agent: string) => vscode.l10n.t('{0} does not offer modes.', agent),
		noModels: (agent: string) => vscode.l10n.t('{0} does not offer a choice of model.', agent),
		noSuchSetting: (agent: string) => vscode.l10n.t('{0} does not offer that setting (any more).', agent),
		noSuchValue: (agent: string, setting: string) => vscode.l10n.t('{0} does not offer that choice for "{1}".', agent, setting),
		noSuchMode: (agent: string) => vscode.l10n.t('{0} does not offer that mode.', agent),
		noSuchModel: (agent: string) => vscode.l10n.t('{0} does not offer that model.', agent),
		noFolderToMention: () => vscode.l10n.t('This chat has no worktree to mention files from.'),
		needsTitle: () => vscode.l10n.t('A chat needs a title.'),
		/** The two choices of an agent's on/off setting. */
		settingOn: () => vscode.l10n.t('On'),
		settingOff: () => vscode.l10n.t('Off'),
	};
}

export type ChatServiceStrings = ReturnType<typeof chatServiceStrings>;

/** The messenger's own answers (a request it cannot take, or one cancelled), translated as the rest. */
export function messengerStrings(vscode: VsCodeL10n) {
	return {
		unknownMethod: (method: string) => vscode.l10n.t('Unknown request "{0}".', method),
		badRequest: (problem: string) => vscode.l10n.t('The request was not in a form Agent Tabs understands ({0}); nothing was done.', problem),
		cancelled: () => vscode.l10n.t('Cancelled.'),
	};
}

export type MessengerStrings = ReturnType<typeof messengerStrings>;
