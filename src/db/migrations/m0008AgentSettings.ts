import type { Migration } from './migration';

/**
 * A chat's agent settings (its mode, model and config option values, as the agent last reported them): kept
 * so an agent that restarts (after the idle timeout, a crash or a window reload) is put back to them, instead
 * of silently coming back in its default mode. JSON, null until the agent has reported any; a changed agent
 * configuration (`config_hash`) clears it with the backend session.
 */
export const agentSettings: Migration = {
	version: 8,
	name: 'agent settings',
	up(db) {
		const has = db.all<{ name: string }>('PRAGMA table_info(agent_sessions)').some((c) => c.name === 'settings_json');
		if (!has) {
			db.exec('ALTER TABLE agent_sessions ADD COLUMN settings_json TEXT');
		}
	},
};
