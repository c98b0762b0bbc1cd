// As root the embedded PostgreSQL runs as the `postgres` user. When that user cannot reach the data
// directory, start-up stops with a message naming the directory and the remedies, exits non-zero, and
// leaves every permission outside DATA_DIR as it was (the service once chmodded every parent to 0755).
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const ROOT = resolve(import.meta.dirname, "../..");
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.skipIf(!isRoot)("an embedded PostgreSQL that cannot reach DATA_DIR (as root)", () => {
  it("stops start-up with the directory and the remedies, exits non-zero, and changes no parent's mode", { timeout: 120_000 }, async () => {
    const privateDir = mkdtempSync(join(tmpdir(), "rating-private-"));
    dirs.push(privateDir);
    chmodSync(privateDir, 0o700);
    const tmpMode = statSync(tmpdir()).mode;
    const dataDir = join(privateDir, "data");
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dataDir, PORT: "0", LOG_LEVEL: "silent" };
    delete env.DATABASE_URL;
    const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], { cwd: ROOT, env });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((res) => child.on("exit", (c) => res(c)));

    expect(code, stderr).toBe(1);
    expect(stderr).toContain(dataDir);
    expect(stderr).toMatch(/DATA_DIR/);
    expect(stderr).toMatch(/non-root user/);
    expect(stderr).toMatch(/DATABASE_URL/);
    expect(stderr).not.toMatch(/EACCES|Unhandled 'error' event/);
    expect(statSync(privateDir).mode & 0o777).toBe(0o700);
    expect(statSync(tmpdir()).mode).toBe(tmpMode);
  });
});
