import { defineConfig } from 'vitest/config';

// Unit tests of the data logic (no browser).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
