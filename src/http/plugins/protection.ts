// Protection under load: a 503 with Retry-After while the event loop is saturated, instead of letting
// latency grow without bound. (Body size → 413 is Fastify's bodyLimit; per-key rate limits are
// @fastify/rate-limit, registered in app.ts.)
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { FastifyInstance } from "fastify";
import fp from "fastify-plugin";
import { ProblemError } from "../problems.js";

export interface ProtectionOptions {
  /** Event-loop delay (p99 over the last sample window, ms) above which new requests are shed. */
  maxEventLoopDelayMs: number;
  /** A test hook: force the overloaded state. */
  isOverloaded?: () => boolean;
}

export const protectionPlugin = fp(
  async function protection(app: FastifyInstance, opts: ProtectionOptions) {
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    let overloaded = false;
    const timer = setInterval(() => {
      overloaded = histogram.percentile(99) / 1e6 > opts.maxEventLoopDelayMs;
      histogram.reset();
    }, 1000);
    timer.unref();
    app.addHook("onClose", async () => {
      clearInterval(timer);
      histogram.disable();
    });
    app.addHook("onRequest", async (request) => {
      if (!request.routeOptions.config?.role) return; // health, docs stay reachable
      if (overloaded || opts.isOverloaded?.())
        throw new ProblemError("unavailable", "the service is overloaded; retry shortly", {}, { "Retry-After": "2" });
    });
  },
  { name: "protection" },
);
