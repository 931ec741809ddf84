// Lint: typed rules where type information is what catches the bug (floating
// promises), plus the package boundaries STYLE.md asks for. Import cycles are
// checked by `madge --circular` in `npm run lint`.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/build/**', '**/node_modules/**', 'proto/gen/**', 'kernel-bridge/gen/**', 'test/fixtures/**', 'poller/assets/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportAllDeclaration', message: 'Re-export names explicitly (STYLE.md).' },
      ],
    },
  },
  {
    files: ['agent/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'node:child_process', message: 'The agent never spawns processes: read /proc and /sys directly.' },
            { name: 'child_process', message: 'The agent never spawns processes: read /proc and /sys directly.' },
          ],
          patterns: [{ group: ['@loadfeed/poller', '@loadfeed/kernel-bridge'], message: 'agent depends on proto only.' }],
        },
      ],
    },
  },
  {
    files: ['poller/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@loadfeed/agent', '@loadfeed/demo'], message: 'poller depends on proto and kernel-bridge only (the demo is its own package).' }] },
      ],
    },
  },
  {
    files: ['kernel-bridge/src/**/*.ts', 'proto/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@loadfeed/*'], message: 'this package depends on nothing internal.' }] },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
  },
);
