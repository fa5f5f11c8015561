import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Environment for git in tests: no system or global config can leak in. */
export function gitEnv(home: string): NodeJS.ProcessEnv {
	const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: path.join(home, '.gitconfig'), GIT_TERMINAL_PROMPT: '0' };
	// Identities come from the test's own config only, never from the environment the tests run in.
	for (const name of ['GIT_AUTHOR_NAME', 'GIT_AUTHOR_EMAIL', 'GIT_COMMITTER_NAME', 'GIT_COMMITTER_EMAIL']) {
		delete env[name];
	}
	return env;
}

/** A real git repository with one commit, in `dir`. */
export function makeRepo(dir: string, files: Record<string, string> = { 'README.md': '# test\n' }): string {
	fs.mkdirSync(dir, { recursive: true });
	const env = gitEnv(path.dirname(dir));
	const git = (...args: string[]): string => execFileSync('git', args, { cwd: dir, env, encoding: 'utf8' });
	git('init', '-q', '-b', 'main');
	git('config', 'user.name', 'Agent Tabs Test');
	git('config', 'user.email', 'test@agent-tabs.invalid');
	git('config', 'commit.gpgsign', 'false');
	for (const [rel, content] of Object.entries(files)) {
		fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
		fs.writeFileSync(path.join(dir, rel), content);
	}
	git('add', '-A');
	git('commit', '-q', '-m', 'initial');
	return dir;
}

/** Every file under a folder (except .git) with its bytes and executable bit. */
export function snapshotFiles(dir: string): Record<string, { data: string; exec: boolean }> {
	const out: Record<string, { data: string; exec: boolean }> = {};
	const walk = (d: string): void => {
		for (const e of fs.readdirSync(d, { withFileTypes: true })) {
			if (e.name === '.git') {
				continue;
			}
			const p = path.join(d, e.name);
			if (e.isDirectory()) {
				walk(p);
			} else {
				out[path.relative(dir, p)] = { data: fs.readFileSync(p).toString('base64'), exec: (fs.statSync(p).mode & 0o111) !== 0 };
			}
		}
	};
	walk(dir);
	return out;
}
