/** Every id the extension registers with VS Code, in one place (typed, so a typo fails to compile). */
export const commandIds = {
	showLogs: 'agentTabs.showLogs',
	showStateFolder: 'agentTabs.showStateFolder',
	refreshSessions: 'agentTabs.refreshSessions',
	setApiKey: 'agentTabs.setApiKey',
	showAgents: 'agentTabs.showAgents',
} as const;

export const settingIds = {
	section: 'agentTabs',
	agents: 'agents',
	permissionsDefault: 'permissions.default',
	permissionsTimeoutSeconds: 'permissions.timeoutSeconds',
	idleMinutes: 'agents.idleMinutes',
} as const;

export const viewIds = {
	container: 'agentTabs',
	sessions: 'agentTabs.sessions',
} as const;

export const contextKeys = {
	storeReady: 'agentTabs.storeReady',
	storeFailed: 'agentTabs.storeFailed',
} as const;
