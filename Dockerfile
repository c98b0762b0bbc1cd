# syntax=docker/dockerfile:1
# Contract-aware rating service. Three stages: dependencies (npm ci, whose postinstall runs `prisma generate`
# offline), build (tsc → dist, then dev dependencies pruned), and a slim runtime running as a non-root user.
# The server applies prisma/migrations itself on start, so the image carries them.

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# postinstall (scripts/prisma-generate.mjs) needs the generator script and the schema.
COPY scripts/prisma-generate.mjs ./scripts/prisma-generate.mjs
COPY prisma ./prisma
RUN npm ci --no-audit --no-fund

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./package.json
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
# dist/db/migrator.js reads ../../prisma/migrations, i.e. /app/prisma/migrations.
COPY --from=build --chown=node:node /app/prisma ./prisma
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node itself as PID 1 receives SIGTERM from `docker stop` and shuts down gracefully (server.ts).
CMD ["node", "dist/server.js"]
