import { defineConfig } from 'vitest/config';

// End-to-end tests: a real `flowlake serve` on a lake parsed from the shared test
// captures, driven through Debian's Chromium with playwright-core.
export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 600_000,
    fileParallelism: false,
  },
});
