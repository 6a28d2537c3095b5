import tseslint from 'typescript-eslint';

const io = ['node:*', 'fs', 'fs/*', 'child_process', 'net', 'http', 'https', 'os', 'path', 'crypto', 'worker_threads', 'dgram', 'dns', 'tls', 'process'];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'schemas/**', '.nx/**', 'bench/results/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name=/^(it|test|describe)$/][callee.property.name='only']", message: 'focused tests hide the rest of the suite' },
      ],
    },
  },
  {
    // The domain core is pure: no I/O, no clock, no randomness, no infrastructure.
    files: ['libs/domain/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: io, message: 'libs/domain is pure: no node builtins. Put I/O in a service or libs/nats.' },
            { group: ['@nats-io/*', 'fastify', '@fastify/*', 'pino', 'prom-client', 'ulid', 'cockatiel', '@taskstream/nats', '@taskstream/testing'], message: 'libs/domain is pure: no infrastructure imports.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', { name: 'process', message: 'libs/domain is pure: no process access.' }, { name: 'fetch', message: 'libs/domain is pure: no network.' }, { name: 'setTimeout', message: 'libs/domain is pure: no timers.' }],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'libs/domain is pure: time arrives as an input.' }, { object: 'Math', property: 'random', message: 'libs/domain is pure: ids and randomness arrive as inputs.' }],
    },
  },
  {
    // The client runs in browsers too: fetch and WebSocket only, no node builtins, no Node-only packages.
    files: ['libs/client/src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ group: [...io, 'ws', 'undici'], message: 'libs/client runs in browsers: use fetch and an injected WebSocket.' }] }],
      'no-restricted-globals': ['error', { name: 'process', message: 'libs/client runs in browsers: take settings as options.' }, { name: 'Buffer', message: 'libs/client runs in browsers: use TextDecoder and Uint8Array.' }],
    },
  },
  {
    files: ['**/test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
