import http from "node:http";
import { createConnectRouter } from "@connectrpc/connect";
import { createActions, createHostInstanceResolver, createMemoryStore } from "connect-actions";
import { createNodeRouterHandler } from "connect-actions/management";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

// One service, several tenants: the host a request is sent to picks the instance (a.example.com -> "a",
// b.example.com -> "b"; other hosts are refused with NotFound), for executions and management alike.
const instances = createHostInstanceResolver({ hosts: { "a.example.com": "a", "b.example.com": "b" }, fallback: null });
const actions = createActions({
  store: createMemoryStore({ maxTargetsPerInstance: 100, maxExecutionsPerInstance: 100 }),
  resolveInstance: instances,
  // SYSTEM_TOKEN manages the instance of the host it calls; TOKEN_A and TOKEN_B their own instance only.
  adminTokens: process.env.SYSTEM_TOKEN ?? "change-me",
  instanceTokens: { a: process.env.TOKEN_A ?? "change-me-a", b: process.env.TOKEN_B ?? "change-me-b" },
  // Or credentials of your own instead of the tokens, for example a JWT per tenant:
  //   authorize: async (req) => {
  //     const claims = await verifyJwt(bearerTokenOf(req.header));
  //     return claims.system ? { instanceId: instances(req), role: "system" } : { instanceId: claims.tenant, role: "instance" };
  //   },
  dispatcher: { maxAsyncPerInstance: 32 }, // of the 64 async slots, no tenant holds more than half
});
const router = createConnectRouter({ interceptors: [actions.interceptor] });
router.service(GreetService, { greet: (req) => ({ greeting: `Hello, ${req.name}!` }) });
actions.registerManagement(router);

const server = http.createServer(createNodeRouterHandler({ router })).listen(Number(process.env.PORT ?? 8080));
process.once("SIGTERM", () => server.close(() => void actions.close()));
