/** Every id the extension registers with VS Code, in one place (typed, so a typo fails to compile). */
export const commandIds = {
	showLogs: 'agentTabs.showLogs',
	showStateFolder: 'agentTabs.showStateFolder',
	refreshSessions: 'agentTabs.refreshSessions',
	setApiKey: 'agentTabs.setApiKey',
	showAgents: 'agentTabs.showAgents',
	newSession: 'agentTabs.newSession',
	deleteSession: 'agentTabs.deleteSession',
	archiveSession: 'agentTabs.archiveSession',
	restoreSession: 'agentTabs.restoreSession',
	openWorktreeInNewWindow: 'agentTabs.openWorktreeInNewWindow',
	revealWorktree: 'agentTabs.revealWorktree',
	mergeSession: 'agentTabs.mergeSession',
	createPullRequest: 'agentTabs.createPullRequest',
	showSessionRisk: 'agentTabs.showSessionRisk',
	attachWorktree: 'agentTabs.attachWorktree',
	removeWorktree: 'agentTabs.removeWorktree',
	newChat: 'agentTabs.newChat',
	openChat: 'agentTabs.openChat',
	renameChat: 'agentTabs.renameChat',
	closeChat: 'agentTabs.closeChat',
	newTask: 'agentTabs.newTask',
	cancelTask: 'agentTabs.cancelTask',
	retryTask: 'agentTabs.retryTask',
	openTaskChat: 'agentTabs.openTaskChat',
} as const;

export const settingIds = {
	section: 'agentTabs',
	agents: 'agents',
	permissionsDefault: 'permissions.default',
	permissionsTimeoutSeconds: 'permissions.timeoutSeconds',
	idleMinutes: 'agents.idleMinutes',
	silenceMinutes: 'agents.silenceMinutes',
	worktreesRoot: 'worktrees.root',
	worktreesCopy: 'worktrees.copy',
	worktreesSetupCommand: 'worktrees.setupCommand',
	worktreesProposedSetupCommand: 'worktrees.proposedSetupCommand',
	checkpointsKeepPerChat: 'checkpoints.keepPerChat',
	gitMaxConcurrentProcesses: 'git.maxConcurrentProcesses',
	tasksMaxConcurrent: 'tasks.maxConcurrent',
	tasksMaxPerWorktree: 'tasks.maxPerWorktree',
} as const;

export const viewIds = {
	container: 'agentTabs',
	sessions: 'agentTabs.sessions',
	tasks: 'agentTabs.tasks',
} as const;

export const contextKeys = {
	storeReady: 'agentTabs.storeReady',
	storeFailed: 'agentTabs.storeFailed',
} as const;
