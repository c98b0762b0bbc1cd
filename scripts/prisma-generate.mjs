// Runs `prisma generate` offline. Prisma's CLI insists on a schema-engine binary that it would download
// from a host we cannot reach; `generate` never runs it, so any existing file satisfies the check.
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const env = { ...process.env };
if (!env.PRISMA_SCHEMA_ENGINE_BINARY) {
  const dir = join(tmpdir(), "rating-service-prisma");
  mkdirSync(dir, { recursive: true });
  const stub = join(dir, "schema-engine-stub");
  if (!existsSync(stub)) {
    writeFileSync(stub, "#!/bin/sh\nexit 1\n");
    chmodSync(stub, 0o755);
  }
  env.PRISMA_SCHEMA_ENGINE_BINARY = stub;
}
env.PRISMA_HIDE_UPDATE_MESSAGE = "1";
const args = process.argv.slice(2);
const r = spawnSync("npx", ["--no-install", "prisma", ...(args.length ? args : ["generate"])], {
  stdio: "inherit",
  env,
});
process.exit(r.status ?? 1);
