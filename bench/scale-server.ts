// Scale bench server: one sample server (createActions, the sample's planner) on a PostgreSQL
// store in the schema argv[3] of the database argv[2], with in-memory event queue and delivery log.
// Prints its port on one line, then serves until SIGTERM. The parent reads its resident memory
// from /proc.
import { silentLogger } from "../src/logger.js";
import { createPostgresStore } from "../src/postgres/store.js";
import { startSampleServer } from "../src/sample/sample-server.js";

const [databaseUrl, schema] = process.argv.slice(2);
if (databaseUrl === undefined || schema === undefined) throw new Error("usage: scale-server.ts <database URL> <schema>");
// No caps: the bench writes 100 000 targets and executions into one instance.
const store = await createPostgresStore({
  connectionString: databaseUrl,
  schema,
  logger: silentLogger,
  maxTargetsPerInstance: Infinity,
  maxExecutionsPerInstance: Infinity,
});
const server = await startSampleServer({ store, logger: silentLogger, adminToken: "bench-admin-token", processMetrics: false });
process.stdout.write(`${server.port}\n`);
process.on("SIGTERM", () => {
  void server.close().then(() => process.exit(0));
});
