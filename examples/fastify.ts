import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import { createActions, createMemoryStore } from "connect-actions";
import { fastify } from "fastify";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

const actions = createActions({ store: createMemoryStore(), adminTokens: process.env.ADMIN_TOKEN ?? "change-me" });
const server = fastify({ http2: true });
await server.register(fastifyConnectPlugin, {
  routes: (router) => {
    router.service(GreetService, { greet: (req) => ({ greeting: `Hello, ${req.name}!` }) });
    actions.registerManagement(router);
  },
  interceptors: [actions.interceptor],
});
server.addHook("onClose", () => actions.close());
await server.listen({ host: "127.0.0.1", port: 8080 });
