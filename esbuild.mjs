// Builds the extension host bundle (node, cjs), the headless CLI bundle (`agent-tabs`), and the webview bundle (browser),
// and copies sql.js's wasm next to the host bundles. `--production` minifies and drops source maps;
// `--watch` rebuilds on change.
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

/** Prints errors in the `file:line:col: error: text` shape VS Code's esbuild problem matcher reads. */
const problemMatcher = {
	name: 'problem-matcher',
	setup(build) {
		build.onEnd((result) => {
			for (const { text, location } of result.errors) {
				process.stderr.write(`✘ [ERROR] ${text}\n`);
				if (location) {
					process.stderr.write(`    ${location.file}:${location.line}:${location.column}:\n`);
				}
			}
		});
	},
};

/** Copies the sql.js wasm next to the bundles: it is loaded at run time from `dist/sql-wasm.wasm`. */
const copyWasm = {
	name: 'copy-wasm',
	setup(build) {
		build.onEnd(() => {
			fs.mkdirSync('dist', { recursive: true });
			fs.copyFileSync(path.join('node_modules', 'sql.js', 'dist', 'sql-wasm.wasm'), path.join('dist', 'sql-wasm.wasm'));
		});
	},
};

const base = {
	bundle: true,
	minify: production,
	sourcemap: !production,
	sourcesContent: false,
	logLevel: 'silent',
	logOverride: { 'import-is-undefined': 'error' },
	plugins: [problemMatcher],
};

const host = {
	...base,
	// The store's journal and fold run in worker threads (src/db/storeWorker.ts), loaded from dist/storeWorker.js;
	// git is started by a helper process (src/worktrees/spawnHelperProcess.ts), dist/spawnHelperProcess.js.
	entryPoints: { extension: 'src/extension.ts', storeWorker: 'src/db/storeWorker.ts', spawnHelperProcess: 'src/worktrees/spawnHelperProcess.ts' },
	outdir: 'dist',
	platform: 'node',
	format: 'cjs',
	target: 'node20',
	external: ['vscode'],
	plugins: [problemMatcher, copyWasm],
};

const cli = {
	...host,
	entryPoints: { cli: 'src/cli/main.ts' },
	banner: { js: '#!/usr/bin/env node' },
};

const webview = {
	...base,
	entryPoints: { chat: 'src/webview/app/chat/main.ts' },
	outdir: 'dist/webview',
	platform: 'browser',
	format: 'iife',
	target: 'es2022',
};

if (production) {
	// A packaged build must not carry stale source maps or bundles from a development build.
	fs.rmSync('dist', { recursive: true, force: true });
}

const contexts = await Promise.all([esbuild.context(host), esbuild.context(cli), esbuild.context(webview)]);
if (watch) {
	await Promise.all(contexts.map((c) => c.watch()));
} else {
	let failed = false;
	for (const ctx of contexts) {
		try {
			await ctx.rebuild();
		} catch {
			failed = true;
		}
		await ctx.dispose();
	}
	if (failed) {
		process.exit(1);
	}
}
