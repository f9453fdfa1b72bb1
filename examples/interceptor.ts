import http from "node:http";
import { Code, ConnectError, type UnaryRequest } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createActionsInterceptor, createMemoryStore } from "connect-actions";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

// The lower-level way: a store and the interceptor alone, targets and executions set in code.
const store = createMemoryStore();
const target = await store.createTarget({
  name: "audit",
  type: "webhook",
  endpoint: "http://localhost:8090/audit",
  timeoutMs: 5000,
});
await store.setExecution({ type: "request", service: "example.greet.v1.GreetService" }, [{ target: target.id }]);

// Who calls goes into every payload; here a gateway in front of the service has verified the caller.
function subjectOf(req: UnaryRequest): string {
  const subject = req.header.get("x-verified-subject");
  if (subject === null) throw new ConnectError("no verified caller", Code.Unauthenticated);
  return subject;
}

const handler = connectNodeAdapter({
  routes: (router) => router.service(GreetService, { greet: (req) => ({ greeting: `Hello, ${req.name}!` }) }),
  interceptors: [
    createActionsInterceptor({
      store,
      resolveContext: (req) => ({ orgID: req.header.get("x-org") ?? "", userID: subjectOf(req) }),
    }),
  ],
});
http.createServer(handler).listen(8080);
