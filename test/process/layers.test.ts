// The layers of docs/architecture.md, held: dependency-cruiser (.dependency-cruiser.cjs) over src/ exits non-zero
// on an import against them, and this test fails with its report.
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { expect, test } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");

test("src/ keeps to its layers (http → services → domain; services → db), without cycles or orphans", () => {
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "node_modules/dependency-cruiser/bin/dependency-cruiser.mjs"), "--config", ".dependency-cruiser.cjs", "--output-type", "err", "src"],
    { cwd: ROOT, encoding: "utf8", timeout: 60_000 },
  );
  expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
});
