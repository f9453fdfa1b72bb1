// Bench server: one sample server per configuration named in argv[2] (comma-separated), all in
// this one process so that they share the runtime, its JIT and its CPU placement:
//   plain    no actions interceptor
//   nomatch  interceptor; 10 000 targets and 10 000 executions, none matching the benched method
//   webhook  interceptor; one webhook target on the benched method's request
//   call     interceptor; one call target on the benched method's request
//   async    interceptor; one async target on the benched method's response
//   rawcall  no actions interceptor; a minimal hand-written interceptor POSTs a fixed body to the
//            target with undici before each call (the least an HTTP hook in the request path costs)
//   webhook-bare  the same server as rawcall, but in place of its interceptor the interceptor of
//            createActions({ store }) with no delivery log (one that keeps nothing), no metrics and
//            no event worker, one webhook target on the benched method's request: the fair
//            comparison with rawcall (webhook runs with the sample's metrics and delivery log)
// argv[3] is the bench target's base URL. Prints the ports in the same order on one line, then
// serves until SIGTERM. When started with an IPC channel, it answers every message with its
// process.cpuUsage() (µs), for drivers that measure CPU per request more finely than /proc does.
import type { Interceptor } from "@connectrpc/connect";
import { Agent } from "undici";
import { silentLogger } from "../src/logger.js";
import { createActions } from "../src/setup.js";
import type { DeliveryLog } from "../src/store/delivery-log.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { type SampleServer, startSampleServer } from "../src/sample/sample-server.js";

const [modes = "plain", targetUrl = "http://127.0.0.1:9"] = process.argv.slice(2);
const method = "/zitadel.user.v2.UserService/GetUserByID";

const rawAgent = new Agent({ connections: 128 });
const rawBody = JSON.stringify({ fullMethod: method, instanceID: "sample-instance", request: { userId: "297421523617239040" }, headers: {} });
const rawCall: Interceptor = (next) => async (req) => {
  const res = await rawAgent.request({ origin: targetUrl, path: "/hook", method: "POST", headers: { "content-type": "application/json" }, body: rawBody });
  for await (const _ of res.body) {
    // drain
  }
  return next(req);
};

/** A delivery log that keeps nothing (webhook-bare). */
const noDeliveryLog: DeliveryLog = {
  record() {},
  list: async () => ({ total: 0, records: [] }),
  flush: async () => {},
  close: async () => {},
};

async function start(mode: string): Promise<SampleServer> {
  const root = createMemoryStore({ maxTargetsPerInstance: Infinity, maxExecutionsPerInstance: Infinity }); // 10 000 in one instance (nomatch)
  // The sample's callers are of its instance, "sample-instance".
  const store = root.forInstance("sample-instance");
  if (mode === "nomatch") {
    for (let i = 0; i < 10_000; i++) {
      const t = await store.createTarget({ name: `t${i}`, type: "webhook", endpoint: `${targetUrl}/hook`, timeoutMs: 5000 });
      await store.setExecution({ type: i % 2 === 0 ? "request" : "response", method: `/bench.v1.Service${i % 100}/Method${i}` }, [{ target: t.id }]);
    }
  } else if (mode === "webhook" || mode === "call" || mode === "async") {
    const t = await store.createTarget({
      name: mode, type: mode, endpoint: `${targetUrl}/${mode === "call" ? "call" : "hook"}`, timeoutMs: 5000, interruptOnError: mode !== "async",
    });
    await store.setExecution({ type: mode === "async" ? "response" : "request", method }, [{ target: t.id }]);
  } else if (mode === "webhook-bare") {
    const t = await store.createTarget({ name: "webhook", type: "webhook", endpoint: `${targetUrl}/hook`, timeoutMs: 5000, interruptOnError: true });
    await store.setExecution({ type: "request", method }, [{ target: t.id }]);
  } else if (mode !== "plain" && mode !== "rawcall") {
    throw new Error(`unknown bench mode "${mode}"`);
  }
  const bare = mode === "webhook-bare" ? createActions({ store: root, deliveryLog: noDeliveryLog, worker: false, logger: silentLogger }) : undefined;
  return startSampleServer({
    store: root,
    logger: silentLogger,
    actions: mode !== "plain" && mode !== "rawcall" && mode !== "webhook-bare",
    interceptors: mode === "rawcall" ? [rawCall] : bare !== undefined ? [bare.interceptor] : [],
    adminToken: "bench-admin-token",
    processMetrics: false,
  });
}

const servers: SampleServer[] = [];
for (const mode of modes.split(",")) servers.push(await start(mode));
process.stdout.write(`${servers.map((s) => s.port).join(" ")}\n`);
if (process.send !== undefined) process.on("message", () => process.send!(process.cpuUsage()));
process.on("SIGTERM", () => {
  void Promise.all(servers.map((s) => s.close())).then(() => process.exit(0));
});
