import http from "node:http";
import { createConnectRouter } from "@connectrpc/connect";
import { createActions, createMemoryStore } from "connect-actions";
import { createConsoleHandler } from "connect-actions/console";
import { createNodeRouterHandler } from "connect-actions/management";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

const actions = createActions({ store: createMemoryStore(), adminTokens: process.env.ADMIN_TOKEN ?? "change-me" });
const router = createConnectRouter({ interceptors: [actions.interceptor] });
router.service(GreetService, { greet: (req) => ({ greeting: `Hello, ${req.name}!` }) });
actions.registerManagement(router);
const handler = createNodeRouterHandler({ router }); // RPCs and the REST paths the console calls

// The console signs in with the management token; apiBaseUrl defaults to the same origin.
const webConsole = createConsoleHandler({ basePath: "/console" });
http.createServer((req, res) => (webConsole.handles(req.url ?? "") ? webConsole(req, res) : handler(req, res))).listen(8080);
