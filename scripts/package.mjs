#!/usr/bin/env node
// `npm run package`: a production build, then a .vsix made by @vscode/vsce, then a check of what is inside:
// the bundles and the wasm must be there, and nothing from src/, test/ or node_modules/.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = process.argv[2] ? path.resolve(process.argv[2]) : path.join(root, 'dist-vsix', 'agent-tabs.vsix');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

execFileSync(process.execPath, [path.join(root, 'esbuild.mjs'), '--production'], { cwd: root, stdio: 'inherit' });
fs.mkdirSync(path.dirname(out), { recursive: true });
execFileSync(bin('vsce'), ['package', '--no-dependencies', '--allow-missing-repository', '--no-rewrite-relative-links', '-o', out], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

const files = execFileSync(bin('vsce'), ['ls', '--no-dependencies'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
const required = ['dist/extension.js', 'dist/storeWorker.js', 'dist/spawnHelperProcess.js', 'dist/sql-wasm.wasm', 'dist/webview/chat.js', 'dist/webview/chat.css', 'package.json', 'package.nls.json', 'l10n/bundle.l10n.json', 'media/agent-tabs.svg'];
const missing = required.filter((f) => !files.includes(f));
const forbidden = files.filter((f) => /^(src|test|out|node_modules|bench|scripts)\//.test(f) || f.endsWith('.map') || f.endsWith('.ts'));
if (missing.length || forbidden.length) {
	process.stderr.write(`The package is wrong.\n  missing: ${missing.join(', ') || '-'}\n  must not ship: ${forbidden.join(', ') || '-'}\n`);
	process.exit(1);
}
process.stdout.write(`${out} (${files.length} files, ${(fs.statSync(out).size / 1024).toFixed(0)} KiB)\n`);
