import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources in tests (the "source" export condition),
// so unit tests need no build; process-level tests run the built services. Other packages resolve
// as Node resolves them, without the bundlers' "module" condition (some packages' "module" builds
// import their files without extensions, which only a bundler can load).
const conditions = ['source', 'node', 'development|production'];
const shared = { resolve: { conditions }, ssr: { resolve: { conditions } } };

export default defineConfig({
  ...shared,
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        ...shared,
        test: { name: 'unit', sequence: { groupOrder: 0 }, include: ['libs/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'cli/test/**/*.test.ts', 'bench/test/**/*.test.ts', 'ui/test/**/*.test.ts', 'test/structure/**/*.test.ts'] },
      },
      {
        ...shared,
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          // eventsource and eventsource-parser (under the MCP SDK's HTTP client, so it too) publish their
          // TypeScript sources under "source" too: vite transforms them rather than Node loading .ts.
          server: { deps: { inline: ['@modelcontextprotocol/sdk', 'eventsource', 'eventsource-parser'] } },
          include: ['test/**/*.test.ts'],
          exclude: ['test/faults/**', 'test/structure/**', 'test/ui/**'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          // Each file starts its own nats-server(s) and service processes; two cores run two at a time.
          maxWorkers: 2,
        },
      },
      {
        ...shared,
        test: {
          name: 'faults',
          sequence: { groupOrder: 2 },
          include: ['test/faults/**/*.test.ts'],
          testTimeout: 240_000,
          hookTimeout: 60_000,
          // Fault tests start many processes and kill them: one file at a time.
          maxWorkers: 1,
        },
      },
      {
        ...shared,
        test: {
          // The web UI in a real browser (npm run test:ui): the system's Chromium against a real stack on loopback.
          name: 'ui',
          sequence: { groupOrder: 3 },
          include: ['test/ui/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // A browser and a stack per file are as much as two cores carry.
          maxWorkers: 1,
        },
      },
    ],
  },
});
