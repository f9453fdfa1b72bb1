import { expressConnectMiddleware } from "@connectrpc/connect-express";
import { createActions, createMemoryStore } from "connect-actions";
import express from "express";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

const actions = createActions({ store: createMemoryStore(), adminTokens: process.env.ADMIN_TOKEN ?? "change-me" });
const app = express();
app.use(
  expressConnectMiddleware({
    routes: (router) => {
      router.service(GreetService, { greet: (req) => ({ greeting: `Hello, ${req.name}!` }) });
      actions.registerManagement(router);
    },
    interceptors: [actions.interceptor],
  }),
);
app.listen(8080);
