// `npm start`: the sample server on PORT (default 8080) and HOST (default 127.0.0.1), keeping
// targets, executions, queued events and the delivery log in memory, or in PostgreSQL when
// DATABASE_URL is set (several servers may share it; the sample's users live there too).
// The management API (ActionService) needs "Authorization: Bearer <token>": the token is
// ACTIONS_ADMIN_TOKEN, or a random one generated and printed at start. It manages any instance:
// the one of the host it is sent to. ACTIONS_INSTANCE_TOKENS ("a.localhost=token-a,b.localhost=token-b")
// makes each host an instance of its own, with a token that manages that instance only; other hosts
// are the instance "sample-instance".
// SIGTERM or SIGINT shut it down gracefully within SHUTDOWN_GRACE_MS (default 25 000); a second
// signal ends it at once. A start-up failure is one line on stderr with what to do.
import { createJsonLogger, type LogLevel } from "../logger.js";
import { generateAdminToken, type SampleServer, startSampleServer } from "./sample-server.js";
import { bannerText, describeStartupFailure, readEnvironment, type SampleEnvironment } from "./startup.js";

const logger = createJsonLogger({ level: (process.env.LOG_LEVEL as LogLevel | undefined) ?? "info" });

const fail = (line: string, exitCode: number): never => {
  process.stderr.write(`Cannot start the sample server: ${line}\n`);
  process.exit(exitCode);
};

let env: SampleEnvironment;
try {
  env = readEnvironment(process.env);
} catch (error) {
  fail(
    describeStartupFailure(error, { port: 0, host: "", adminToken: undefined, instanceTokens: {}, databaseUrl: undefined, shutdownGraceMs: 0 }),
    2,
  );
}
const environment = env!;
const adminToken = environment.adminToken ?? generateAdminToken();

let server: SampleServer;
try {
  server = await startSampleServer({
    port: environment.port,
    host: environment.host,
    logger,
    adminToken,
    instanceTokens: environment.instanceTokens,
    databaseUrl: environment.databaseUrl,
  });
} catch (error) {
  fail(describeStartupFailure(error, environment), 1);
}
const running = server!;
logger.info("storage", { backend: environment.databaseUrl === undefined ? "memory" : "postgres" });
logger.info("instances", { hosts: Object.keys(environment.instanceTokens), otherHosts: running.instanceID });
if (environment.adminToken === undefined) {
  // A generated token is useless unless the operator learns it; one from the environment is not logged.
  logger.info("sample server listening", { url: running.url, adminToken, adminTokenSource: "generated" });
} else {
  logger.info("sample server listening", { url: running.url, adminTokenSource: "ACTIONS_ADMIN_TOKEN" });
}
process.stderr.write(
  bannerText({
    url: running.url,
    token: adminToken,
    tokenSource: environment.adminToken === undefined ? "generated" : "ACTIONS_ADMIN_TOKEN",
    interactive: process.stderr.isTTY === true,
    instanceHosts: Object.keys(environment.instanceTokens),
    otherHosts: running.instanceID,
  }),
);

let stopping = false;
const stop = (signal: NodeJS.Signals) => {
  if (stopping) {
    logger.warn("second signal: exiting now", { signal });
    process.exit(1);
  }
  stopping = true;
  logger.info("signal received, shutting down", { signal, graceMs: environment.shutdownGraceMs });
  running.shutdown({ graceMs: environment.shutdownGraceMs }).then(
    () => process.exit(0),
    (error: unknown) => {
      logger.error("shutdown failed", { error });
      process.exit(1);
    },
  );
};
process.on("SIGINT", stop);
process.on("SIGTERM", stop);
