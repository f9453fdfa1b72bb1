import http from "node:http";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createActions, createGrpcHealthService, createHealth, createHealthHandler, HealthService } from "connect-actions";
import { createPostgresHealthCheck, createPostgresStore } from "connect-actions/postgres";
import pg from "pg";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
pool.on("error", (error) => console.warn("postgres: idle connection failed", error));
const actions = createActions({ store: await createPostgresStore({ pool }), adminTokens: process.env.ADMIN_TOKEN ?? "change-me" });

// Ready while PostgreSQL answers (checked every 2 s), live while the process runs.
const health = createHealth({ checks: [createPostgresHealthCheck({ pool })] });
const probes = createHealthHandler(health); // GET /livez, /healthz, /readyz: 200 or 503
const handler = connectNodeAdapter({
  routes: (router) => {
    router.service(GreetService, { greet: (req) => ({ greeting: `Hello, ${req.name}!` }) });
    actions.registerManagement(router);
    router.service(HealthService, createGrpcHealthService(health), { interceptors: [] }); // grpc.health.v1
  },
  interceptors: [actions.interceptor],
});
const server = http.createServer((req, res) => (probes.handles(req.url ?? "") ? probes(req, res) : handler(req, res)));
server.listen(Number(process.env.PORT ?? 8080));

// Graceful shutdown: not ready, no new connections, then what is in flight gets 25 s before it is cancelled.
process.once("SIGTERM", () => {
  health.drain();
  const graceOver = AbortSignal.timeout(25_000);
  server.close(() => void actions.close({ signal: graceOver }).then(() => pool.end()));
  server.closeIdleConnections();
  graceOver.addEventListener("abort", () => server.closeAllConnections());
});
