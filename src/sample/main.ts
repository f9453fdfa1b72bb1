// `npm start`: the sample server on PORT (default 8080) and HOST (default 127.0.0.1), keeping
// targets, executions, queued events and the delivery log in memory, or in PostgreSQL when
// DATABASE_URL is set (several servers may share it).
// The management API (ActionService) needs "Authorization: Bearer <token>": the token is
// ACTIONS_ADMIN_TOKEN, or a random one generated and printed at start. It manages any instance:
// the one of the host it is sent to. ACTIONS_INSTANCE_TOKENS ("a.localhost=token-a,b.localhost=token-b")
// makes each host an instance of its own, with a token that manages that instance only; other hosts
// are the instance "sample-instance".
import { createJsonLogger } from "../logger.js";
import { parseInstanceTokens } from "./instance-tokens.js";
import { generateAdminToken, startSampleServer } from "./sample-server.js";

const logger = createJsonLogger({ level: (process.env.LOG_LEVEL as "info" | undefined) ?? "info" });
const port = Number(process.env.PORT ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  logger.error("PORT must be a port number", { port: process.env.PORT });
  process.exit(2);
}
const fromEnv = process.env.ACTIONS_ADMIN_TOKEN;
if (fromEnv !== undefined && fromEnv.trim() === "") {
  logger.error("ACTIONS_ADMIN_TOKEN is set but empty; unset it to get a generated token");
  process.exit(2);
}
const adminToken = fromEnv?.trim() ?? generateAdminToken();
const databaseUrl = process.env.DATABASE_URL || undefined;
let instanceTokens: Record<string, string>;
try {
  instanceTokens = parseInstanceTokens(process.env.ACTIONS_INSTANCE_TOKENS ?? "");
} catch (error) {
  logger.error(`ACTIONS_INSTANCE_TOKENS: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
if (Object.values(instanceTokens).includes(adminToken)) {
  logger.error("ACTIONS_INSTANCE_TOKENS: an instance token must differ from ACTIONS_ADMIN_TOKEN");
  process.exit(2);
}
const server = await startSampleServer({ port, host: process.env.HOST ?? "127.0.0.1", logger, adminToken, instanceTokens, databaseUrl });
logger.info("storage", { backend: databaseUrl === undefined ? "memory" : "postgres" });
logger.info("instances", { hosts: Object.keys(instanceTokens), otherHosts: server.instanceID });
if (fromEnv === undefined) {
  // A generated token is useless unless the operator learns it; one from the environment is not echoed.
  logger.info("sample server listening", { url: server.url, adminToken, adminTokenSource: "generated" });
} else {
  logger.info("sample server listening", { url: server.url, adminTokenSource: "ACTIONS_ADMIN_TOKEN" });
}
const shownToken = fromEnv === undefined ? adminToken : "$ACTIONS_ADMIN_TOKEN";
process.stderr.write(
  `\nManagement API (ActionService v2beta and v2) at ${server.url}, for example:\n` +
    `  curl -H "Authorization: Bearer ${shownToken}" ${server.url}/v2beta/actions/executions/methods\n` +
    (Object.keys(instanceTokens).length === 0
      ? ""
      : `Instances by host: ${Object.keys(instanceTokens).join(", ")} (each with its ACTIONS_INSTANCE_TOKENS token); ` +
        `other hosts: ${server.instanceID}.\n`) +
    (fromEnv === undefined ? "Set ACTIONS_ADMIN_TOKEN to choose the token yourself.\n\n" : "\n"),
);
const stop = async (signal: string) => {
  logger.info("shutting down", { signal });
  await server.close();
  process.exit(0);
};
process.once("SIGINT", () => void stop("SIGINT"));
process.once("SIGTERM", () => void stop("SIGTERM"));
