import { defineConfig } from "vitest/config";

// Two projects, run one after the other by `npm test`: "unit" (everything, files in
// parallel) and "soak" (the 100 000-request memory test, alone, so that it neither
// slows the timing-sensitive tests down nor is measured under their load).
const soak = ["test/memory-flat.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    projects: [
      { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"], exclude: soak } },
      { extends: true, test: { name: "soak", include: soak } },
    ],
  },
});
