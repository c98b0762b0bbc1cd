// The README's curl walk-through, run as it stands: its bash block, extracted from README.md, against the real
// app listening on 127.0.0.1 with the system clock (the walk-through computes its dates from today, as it
// does for a reader). It must exit 0 and leave an invoice for the previous calendar month.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { systemClock } from "../../src/clock.js";
import { KEYS, useTestApp } from "../helpers/app.js";

const ROOT = resolve(import.meta.dirname, "../..");
// Never shed load here: a busy test machine must not fail the walk-through with a 503.
const t = useTestApp({}, { clock: systemClock, isOverloaded: () => false });

/** The README's walk-through: the one ```bash block of its "End to end with curl" section. */
function walkthrough(): string {
  const readme = readFileSync(resolve(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## End to end with curl"));
  const block = /```bash\n([\s\S]*?)\n```/.exec(section);
  if (!block?.[1]) throw new Error("README.md has no ```bash block under \"End to end with curl\"");
  return block[1];
}

let api: string;
beforeAll(async () => {
  await t.app.listen({ host: "127.0.0.1", port: 0 });
  api = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
});

describe("the README walk-through", () => {
  it("GET / sends a newcomer to the documentation, without a key", async () => {
    const res = await t.app.inject({ method: "GET", url: "/" });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe("/docs");
  });

  it("starts with set -euo pipefail and fails curl calls on an error status", () => {
    const script = walkthrough();
    expect(script.split("\n")[0]).toBe("set -euo pipefail");
    for (const line of script.split("\n").filter((l) => /\bcurl\b/.test(l))) expect(line).toContain("--fail-with-body");
  });

  it("runs verbatim with bash and issues the previous month's invoice", { timeout: 120_000 }, async () => {
    const { stdout } = await promisify(execFile)("bash", ["-c", walkthrough()], {
      cwd: ROOT,
      env: { ...process.env, API: api, KEY: KEYS.admin },
      timeout: 100_000,
    }).catch((e: Error & { stdout?: string; stderr?: string }) => {
      throw new Error(`the walk-through failed: ${e.message}\n--- stdout\n${e.stdout}\n--- stderr\n${e.stderr}`);
    });
    expect(stdout).toMatch(/^HTTP\/1\.1 201/m);
    expect(stdout).toMatch(/^idempotent-replayed: true/im);

    const docs = (await t.get("/v1/documents", "reader")).json().data;
    expect(docs).toHaveLength(1);
    const now = new Date();
    const previousMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)).toISOString();
    expect(docs[0]).toMatchObject({
      kind: "invoice",
      period: { start: previousMonth },
      subtotal: "13200.00",
      alreadyBilled: "10000.00",
      amount: "3200.00",
    });
    expect(stdout).toContain(docs[0].number); // the backup CSV names it
  });
});
