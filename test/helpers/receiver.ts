// A real HTTP receiver on 127.0.0.1 for webhook tests: records every request (headers and the exact body
// bytes) and answers as the test scripts it.
import { type IncomingHttpHeaders, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export type Answer = { status: number; headers?: Record<string, string> } | "hang";

export interface Receiver {
  url: string;
  received: Received[];
  /** Answers in order; once used up, `fallback`. */
  script(answers: Answer[], fallback?: Answer): void;
  /** Resolves once `n` requests arrived (or rejects after `ms`). */
  waitFor(n: number, ms?: number): Promise<Received[]>;
  /** Verifies a request with the specification's reference library; returns the parsed payload. */
  verify(secret: string, r: Received): any;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  let answers: Answer[] = [];
  let fallback: Answer = { status: 204 };
  const hanging = new Set<() => void>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() });
      const answer = answers.shift() ?? fallback;
      if (answer === "hang") {
        hanging.add(() => res.destroy());
        return;
      }
      res.writeHead(answer.status, answer.headers ?? {});
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    script(a, f = { status: 204 }) {
      answers = [...a];
      fallback = f;
    },
    async waitFor(n, ms = 20_000) {
      const until = Date.now() + ms;
      while (received.length < n) {
        if (Date.now() > until) throw new Error(`expected ${n} webhook request(s) within ${ms} ms, got ${received.length}`);
        await new Promise((r) => setTimeout(r, 25));
      }
      return received.slice(0, n);
    },
    verify(secret, r) {
      const headers = Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)]));
      return new Webhook(secret).verify(r.body, headers);
    },
    async close() {
      for (const end of hanging) end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
