// ESLint with typescript-eslint's recommended rules, run by `npm run lint` and by the test command.
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'out/', 'node_modules/', '.test-artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      // A `let` that a clean-up closure reads before its one assignment is the clearest form there.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'separate-type-imports' }],
    },
  },
  {
    // The core serves the CLI as well as the extension: it never imports VS Code (the UI layer adapts to it).
    files: ['src/core/**/*.ts', 'src/cli/**/*.ts', 'src/egress/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'src/core, src/cli and src/egress never import vscode: put VS Code code in src/ui.' }] }],
    },
  },
);
