// Unit tests (node): simulator golden traces, sampler and decoder parity with the Python references, manifests.
// Parity fixtures come from `python tests/web/web_fixtures.py DIR`, passed as WM_FIXTURES=DIR (tests/web/test_web.py does it).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: { include: ["tests/**/*.test.ts"], testTimeout: 120_000, pool: "forks" },
});
