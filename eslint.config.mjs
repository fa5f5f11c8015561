// Lint rules, including the layers of style.md, one way down. Each folder of src may import only the layers
// listed for it in `layers` below; core folders and the CLI never import `vscode`; browser code sees only
// `protocol` and `common`; surfaces (cli, vscode, webview/host, webview/app) never import each other. Only the
// composition root (src/extension.ts) wires everything together.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Each layer and what it may import besides itself, bottom up. Core: common and protocol (pure), db,
 * worktrees, agents, tasks. Surfaces: cli, vscode, webview/host (all of the core) and webview/app (browser).
 */
const core = ['common', 'protocol', 'db', 'worktrees', 'agents', 'tasks'];
const layers = {
	common: { allowed: [], pure: true },
	protocol: { allowed: [], pure: true },
	db: { allowed: ['common', 'protocol'] },
	worktrees: { allowed: ['common', 'protocol', 'db'] },
	agents: { allowed: ['common', 'protocol', 'db', 'worktrees'] },
	tasks: { allowed: ['common', 'protocol', 'db', 'worktrees', 'agents'] },
	cli: { allowed: core },
	vscode: { allowed: core, vscodeApi: true },
	'webview/host': { allowed: core, vscodeApi: true },
	'webview/app': { allowed: ['common', 'protocol'], pure: true },
};

const escape = (text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/**
 * A relative import that reaches layer `target` (`../db`, `../../webview/app/…`; from inside webview also
 * `../app`). Relative paths only, so the `vscode` module is never confused with the `src/vscode` folder.
 */
function reaches(target) {
	const [top, sub] = target.split('/');
	const path = sub ? `(${escape(top)}/)?${escape(sub)}` : escape(top);
	return `^(\\.\\./)+${path}(/.*)?$`;
}
const nodeBuiltins = `^(node:.*|(${builtinModules.filter((m) => !m.startsWith('_')).map(escape).join('|')})(/.*)?)$`;

const layerRules = Object.entries(layers).map(([layer, { allowed, pure, vscodeApi }]) => {
	const forbidden = [...Object.keys(layers).filter((other) => other !== layer && !allowed.includes(other)), 'extension'];
	const patterns = forbidden.map((other) => ({
		regex: reaches(other),
		message: `src/${layer} may import only ${allowed.length ? allowed.join(', ') : 'itself'} (layers one way down, see README "Development").`,
	}));
	if (pure) {
		patterns.push({ regex: nodeBuiltins, message: `src/${layer} is pure: no Node built-ins.` });
	}
	return {
		files: [`src/${layer}/**/*.ts`, `src/${layer}/**/*.tsx`],
		rules: {
			'no-restricted-imports': ['error', {
				paths: vscodeApi ? [] : [{ name: 'vscode', message: `src/${layer} must not import vscode: only src/vscode, src/webview/host and src/extension.ts do.` }],
				patterns,
			}],
		},
	};
});

export default tseslint.config(
	{ ignores: ['dist/**', 'out/**', 'node_modules/**', '.vscode-test/**', 'esbuild.mjs', 'eslint.config.mjs', 'scripts/**', 'test/e2e/**/*.mjs', 'test/integration/index.js'] },
	js.configs.recommended,
	...tseslint.configs.recommended,
	{
		languageOptions: { ecmaVersion: 2022, sourceType: 'module' },
		rules: {
			'no-console': 'error',
			'@typescript-eslint/no-explicit-any': 'error',
			'@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
			'@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
			eqeqeq: ['error', 'always'],
			curly: 'error',
			'no-restricted-syntax': ['error', { selector: 'ExportDefaultDeclaration', message: 'Use named exports.' }],
		},
	},
	...layerRules,
	{
		files: ['test/**/*.ts', 'bench/**/*.ts'],
		rules: { 'no-console': 'off' },
	},
);
