// Lint rules, including the layer rules of style.md: core folders never import `vscode`, and browser code
// sees only `protocol` and `common`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const coreFolders = ['common', 'protocol', 'db', 'worktrees', 'agents', 'tasks', 'cli'];

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
	...coreFolders.map((folder) => ({
		files: [`src/${folder}/**/*.ts`],
		rules: {
			'no-restricted-imports': ['error', {
				paths: [{ name: 'vscode', message: `src/${folder} is a core layer: it must not import vscode (see style.md).` }],
				patterns: [{ group: ['**/vscode/**', '**/webview/**', '**/extension'], message: 'Core layers must not import the VS Code layer.' }],
			}],
		},
	})),
	{
		files: ['src/common/**/*.ts', 'src/protocol/**/*.ts'],
		rules: {
			'no-restricted-imports': ['error', {
				paths: [{ name: 'vscode', message: 'common and protocol are pure TypeScript.' }],
				patterns: [{ group: ['node:*', 'fs', 'path', 'child_process', 'os', '../db/**', '../agents/**', '../worktrees/**', '../tasks/**', '../vscode/**', '../webview/**'], message: 'common and protocol are pure: no Node built-ins, no other layers.' }],
			}],
		},
	},
	{
		files: ['src/webview/app/**/*.ts'],
		rules: {
			'no-restricted-imports': ['error', {
				paths: [{ name: 'vscode', message: 'Webview code runs in the browser.' }],
				patterns: [{ group: ['node:*', '**/db/**', '**/agents/**', '**/worktrees/**', '**/tasks/**', '**/vscode/**', '**/webview/host/**', '**/extension'], message: 'Webview code sees only protocol and common.' }],
			}],
		},
	},
	{
		files: ['test/**/*.ts', 'bench/**/*.ts'],
		rules: { 'no-console': 'off' },
	},
);
