import { defineConfig } from 'vitest/config';

// One configuration for the whole workspace. The global setup starts the shared real servers once per run
// (GANTRY_TEST_SERVERS narrows the list); unit tests sit beside the code, integration tests in test/ folders.
export default defineConfig({
  test: {
    exclude: ['**/node_modules/**', '**/dist/**'],
    globalSetup: ['test/harness/src/global-setup.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    reporters: ['default'],
    clearMocks: true,
    restoreMocks: true,
    // The end-to-end rollouts judge latency canary against baseline, as the agent does in production; run beside
    // the rest of the suite on two cores they would measure the other tests' load. So they run last, alone.
    projects: [
      {
        extends: true,
        test: {
          name: 'packages',
          include: [
            'packages/*/src/**/*.test.ts',
            'packages/*/test/**/*.test.ts',
            'examples/*/src/**/*.test.ts',
            'examples/*/test/**/*.test.ts',
            'examples/*/demo/**/*.test.ts',
            'test/*/src/**/*.test.ts',
            'test/*/test/**/*.test.ts',
            'bench/**/*.test.ts',
          ],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
