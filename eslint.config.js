// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'coverage/**', 'node_modules/**', 'example-app/**', 'bench/**', '*.config.js'] },
  js.configs.recommended,
  {
    files: ['lib/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      eqeqeq: ['error', 'smart'],
      // The protocol lives behind AuthorizationServer: nothing else talks to openid-client.
      'no-restricted-imports': ['error', { paths: [{ name: 'openid-client', message: 'Only lib/authorization-server.ts uses openid-client.' }] }],
      '@typescript-eslint/consistent-type-imports': 'error',
      // `declare global { namespace Express }` is how a middleware adds to Express's Request type.
      '@typescript-eslint/no-namespace': ['error', { allowDeclarations: true }],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // A TokenStore must reject, never throw synchronously: `async` methods guarantee that even when
      // their body has nothing to await (MemoryTokenStore).
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['lib/authorization-server.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    files: ['lib/return-to.ts', 'lib/proxy/path.ts'],
    // The point of the check is to refuse control characters in redirect targets.
    rules: { 'no-control-regex': 'off' },
  },
  {
    files: ['spec/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: { 'no-unused-vars': ['error', { argsIgnorePattern: '^_' }] },
  },
  {
    files: ['spec/**/*.ts'],
    extends: [tseslint.configs.recommended],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'off',
      'no-control-regex': 'off',
    },
  },
);
