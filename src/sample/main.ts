// `npm start`: the sample server on PORT (default 8080) and HOST (default 127.0.0.1).
import { createJsonLogger } from "../logger.js";
import { startSampleServer } from "./sample-server.js";

const logger = createJsonLogger({ level: (process.env.LOG_LEVEL as "info" | undefined) ?? "info" });
const port = Number(process.env.PORT ?? 8080);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  logger.error("PORT must be a port number", { port: process.env.PORT });
  process.exit(2);
}
const server = await startSampleServer({ port, host: process.env.HOST ?? "127.0.0.1", logger });
logger.info("sample server listening", { url: server.url });
const stop = async (signal: string) => {
  logger.info("shutting down", { signal });
  await server.close();
  process.exit(0);
};
process.once("SIGINT", () => void stop("SIGINT"));
process.once("SIGTERM", () => void stop("SIGTERM"));
