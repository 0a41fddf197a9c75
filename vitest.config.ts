import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Integration tests start real servers; keep them in separate forks but few
    // at a time, since CI machines have 2 cores.
    pool: 'forks',
    maxWorkers: 2,
  },
});
