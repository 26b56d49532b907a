import { defineConfig } from 'vitest/config';

// One configuration for the whole workspace. The global setup starts the shared real servers once per run
// (GANTRY_TEST_SERVERS narrows the list); unit tests sit beside the code, integration tests in test/ folders.
export default defineConfig({
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'packages/*/test/**/*.test.ts',
      'examples/*/src/**/*.test.ts',
      'examples/*/test/**/*.test.ts',
      'examples/*/demo/**/*.test.ts',
      'test/*/src/**/*.test.ts',
      'test/*/test/**/*.test.ts',
      'test/e2e/**/*.test.ts',
      'bench/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    globalSetup: ['test/harness/src/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    reporters: ['default'],
    clearMocks: true,
    restoreMocks: true,
  },
});
