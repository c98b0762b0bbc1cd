// `npm run openapi`: writes openapi/openapi.json from the route schemas, the same document the server serves
// at /openapi.json (test/api/openapi.test.ts fails when the committed file is stale). The app is built on a
// database URL that is never queried: generating the document touches no database.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { buildApp } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { connectDatabase } from "../src/db/client.js";
import { KeyRing } from "../src/http/plugins/auth.js";

export const OPENAPI_FILE = resolve(import.meta.dirname, "../openapi/openapi.json");

export async function openapiDocument(): Promise<string> {
  const db = connectDatabase("postgresql://openapi@127.0.0.1:1/unused", 1);
  // Defaults only: the document must not depend on the environment it is generated in.
  const app = await buildApp({ config: loadConfig({}), db, keys: new KeyRing([]), logger: false });
  try {
    await app.ready();
    return `${JSON.stringify(app.swagger(), null, 2)}\n`;
  } finally {
    await app.close();
    await db.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const text = await openapiDocument();
  mkdirSync(dirname(OPENAPI_FILE), { recursive: true });
  writeFileSync(OPENAPI_FILE, text);
  process.stdout.write(`wrote ${OPENAPI_FILE} (${text.length} bytes)\n`);
}
