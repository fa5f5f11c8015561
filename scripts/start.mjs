#!/usr/bin/env node
// `npm start`: try the extension in a browser. Installs the test VS Code if it is missing, makes a production
// build and a .vsix, installs it into a persistent code-server profile in <cache>/start/ (cache:
// AGENT_TABS_TEST_CACHE, default .vscode-test/), and serves a sample git repository on 127.0.0.1 with a
// random password. Runs until Ctrl-C, then stops code-server and everything it started.
// AGENT_TABS_PORT picks the port (default: the one used last time, if it is free).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
	cacheDir,
	codeServerEntry,
	createGitRepo,
	freePort,
	installVsix,
	isPortFree,
	node24,
	prepareProfile,
	repoRoot,
	startCodeServer,
} from './lib/codeServer.mjs';

const startDir = path.join(cacheDir, 'start');
const sampleRepo = path.join(startDir, 'sample-repo');
const portFile = path.join(startDir, 'port');
const logFile = path.join(startDir, 'code-server.log');
const say = (text) => process.stdout.write(`[start] ${text}\n`);

if (!fs.existsSync(node24) || !fs.existsSync(codeServerEntry)) {
	say(`installing the test VS Code into ${cacheDir} (once; several minutes)`);
	execFileSync('bash', [path.join(repoRoot, 'scripts', 'install-test-vscode.sh')], { stdio: 'inherit', env: { ...process.env, AGENT_TABS_TEST_CACHE: cacheDir } });
}

say('building (production)');
execFileSync(process.execPath, [path.join(repoRoot, 'esbuild.mjs'), '--production'], { cwd: repoRoot, stdio: 'inherit' });
fs.mkdirSync(startDir, { recursive: true });
const vsix = path.join(startDir, 'agent-tabs.vsix');
// vsce 4 wants Node >= 22, hence the cached Node 24; relative README links stay relative (no marketplace).
execFileSync(node24, [path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--no-rewrite-relative-links', '-o', vsix], {
	cwd: repoRoot,
	stdio: 'pipe',
});

// The real environment, not the tests' hermetic one: agents started by the extension need the user's HOME
// (their logins live in ~/.claude, ~/.codex, $XDG_DATA_HOME/opencode, …). The profile itself stays in
// <cache>/start; --config keeps code-server away from ~/.config/code-server.
const env = { ...process.env };
delete env.PORT; // code-server would let $PORT override --bind-addr
const dirs = prepareProfile(startDir);
say(`installing ${vsix} into ${dirs.extensionsDir}`);
installVsix({ dirs, vsix, env });

if (!fs.existsSync(path.join(sampleRepo, '.git'))) {
	createGitRepo(sampleRepo, {
		'README.md': '# Sample repository\n\nOpen the Agent Tabs view in the activity bar to start a session here.\n',
		'hello.js': "console.log('hello from the sample repository');\n",
	});
}

const port = await choosePort();
const password = randomBytes(12).toString('base64url');
const server = await startCodeServer({
	dirs,
	workspace: sampleRepo,
	port,
	env: { ...env, PASSWORD: password },
	auth: 'password',
	log: (line) => fs.appendFileSync(logFile, `${line}\n`),
});

say(`code-server is running (log: ${logFile})`);
process.stdout.write(`\n  URL:      ${server.origin}/?folder=${encodeURIComponent(sampleRepo)}\n  Password: ${password}\n\n  Press Ctrl-C to stop.\n\n`);

let stopping = false;
const stop = async (code) => {
	if (stopping) {
		return;
	}
	stopping = true;
	say('stopping');
	await server.stop();
	process.exit(code);
};
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
server.proc.once('exit', (code, signal) => {
	if (!stopping) {
		say(`code-server exited on its own (${code ?? signal}); see ${logFile}`);
		void stop(1);
	}
});

/**
 * The port of the last start when it is still free. A stable port matters: VS Code keys a folder's workspace
 * storage (where Agent Tabs keeps its sessions) by its vscode-remote URI, whose authority includes the port.
 */
async function choosePort() {
	if (process.env.AGENT_TABS_PORT) {
		return Number(process.env.AGENT_TABS_PORT);
	}
	const last = Number(fs.existsSync(portFile) ? fs.readFileSync(portFile, 'utf8') : NaN);
	const port = Number.isInteger(last) && last > 0 && (await isPortFree(last)) ? last : await freePort();
	fs.writeFileSync(portFile, String(port));
	return port;
}
