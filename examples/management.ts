import http from "node:http";
import { createConnectRouter } from "@connectrpc/connect";
import { createActions, createMemoryStore } from "connect-actions";
import { createNodeRouterHandler } from "connect-actions/management";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

// Your own router: the actions interceptor on your services, the ActionService registered next to them,
// and one handler for Connect, gRPC, gRPC-web and ZITADEL's REST paths (POST /v2/actions/targets, ...).
const actions = createActions({ store: createMemoryStore(), adminTokens: [process.env.ADMIN_TOKEN ?? "change-me"] });
const router = createConnectRouter({ interceptors: [actions.interceptor] });
router.service(GreetService, { greet: (req) => ({ greeting: `Hello, ${req.name}!` }) });
actions.registerManagement(router);

http.createServer(createNodeRouterHandler({ router })).listen(8080);
