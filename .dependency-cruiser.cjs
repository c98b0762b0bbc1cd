// The layers of docs/architecture.md, held by test/process/layers.test.ts (npm test):
// http → services → domain; services → db; src/errors.ts and src/clock.ts for all; the domain pure.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "domain-is-pure",
      comment:
        "src/domain imports only itself, src/errors.ts, node built-ins and its libraries (decimal.js, zod): " +
        "no http, services, db, config, clock or app.",
      severity: "error",
      from: { path: "^src/domain/" },
      to: {
        dependencyTypesNot: ["core"],
        pathNot: ["^src/domain/", "^src/errors\\.ts$", "^node_modules/(decimal\\.js|zod)/"],
      },
    },
    {
      name: "services-not-http",
      comment: "Use cases know nothing of HTTP: they throw the errors of src/errors.ts, which http/ maps once.",
      severity: "error",
      from: { path: "^src/services/" },
      to: { path: "^src/http/" },
    },
    {
      name: "db-not-up",
      comment: "The database layer serves the use cases; it never reaches back up into them or into http/.",
      severity: "error",
      from: { path: "^src/db/" },
      to: { path: "^src/(http|services)/" },
    },
    {
      name: "no-circular",
      comment: "A cycle blurs which module is the lower layer.",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true },
    },
    {
      name: "no-orphans",
      comment: "A module nothing imports is dead code (server.ts is the entry point).",
      severity: "error",
      from: {
        orphan: true,
        path: "^src/",
        pathNot: ["^src/server\\.ts$", "^src/worker-process\\.ts$", "^src/generated/", "\\.d\\.ts$"],
      },
      to: {},
    },
  ],
  options: {
    // Type-only imports count: a service importing a type from http/ still depends on it.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: ["node_modules", "^src/generated/"] },
    exclude: { path: ["^src/generated/"] },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
