import http from "node:http";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createActions, createMemoryStore } from "connect-actions";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

// Targets and executions in memory; the management API needs "Authorization: Bearer <ADMIN_TOKEN>".
const actions = createActions({ store: createMemoryStore(), adminTokens: process.env.ADMIN_TOKEN ?? "change-me" });

const handler = connectNodeAdapter({
  routes: (router) => {
    router.service(GreetService, { greet: (req) => ({ greeting: `Hello, ${req.name}!` }) });
    actions.registerManagement(router); // zitadel.action.v2beta and v2 ActionService
  },
  interceptors: [actions.interceptor],
});

const server = http.createServer(handler).listen(Number(process.env.PORT ?? 8080));
process.once("SIGTERM", () => server.close(() => void actions.close()));
