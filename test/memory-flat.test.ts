// Issue 5: memory stays flat under load. 100 000 unary RPCs through the actions interceptor, each
// calling a request webhook and firing an async response target on a loopback target; the heap
// of the server, measured after a forced garbage collection, must not grow between request
// 10 000 (when everything is warm) and request 100 000: a leak of ~90 bytes per request fails it.
//
// Only the server under test runs on the main thread, whose heap is measured. The Connect client
// that drives the load and the loopback target run in a worker thread: their allocations are not
// counted, and on a 2-core machine they do not compete with the server for its event loop.
import { create, type DescFile, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import v8 from "node:v8";
import vm from "node:vm";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { file_zitadel_user_v2_user_service } from "../gen/zitadel/user/v2/user_service_pb.js";
import { silentLogger } from "../src/logger.js";
import { createTargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { addUser, type InterceptedServer, startInterceptedServer } from "./helpers/intercepted-server.js";

const WARMUP = 10_000;
const TOTAL = 100_000;
const CONCURRENCY = 32;
/** Allowed heap growth from request 10 000 to request 100 000. */
const MAX_GROWTH_BYTES = 8 * 1024 * 1024;
const MiB = 1024 * 1024;

v8.setFlagsFromString("--expose-gc");
const gc = vm.runInNewContext("gc") as () => void;

// The load worker (CommonJS, plain JavaScript): a loopback target that answers 200 and only
// counts, and a Connect client of the UserService built from the descriptors it is sent.
const loadWorkerSource = `
const http = require("node:http");
const { parentPort, workerData } = require("node:worker_threads");
const { createFileRegistry, fromBinary } = require("@bufbuild/protobuf");
const { FileDescriptorSetSchema } = require("@bufbuild/protobuf/wkt");
const { createClient } = require("@connectrpc/connect");
const { createConnectTransport } = require("@connectrpc/connect-node");

let targetCalls = 0;
const target = http.createServer({ keepAliveTimeout: 60000 }, (req, res) => {
  req.resume();
  req.on("end", () => {
    targetCalls++;
    res.writeHead(200, { "content-type": "application/json", "content-length": 0 });
    res.end();
  });
});
target.listen(0, "127.0.0.1", () => parentPort.postMessage({ port: target.address().port }));

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, workerData.descriptors));
let client;
let sent = 0;
let answered = 0;
let failed = 0;
parentPort.on("message", async (m) => {
  if (m.type === "connect") {
    client = createClient(registry.getService("zitadel.user.v2.UserService"), createConnectTransport({ baseUrl: m.url, httpVersion: "1.1" }));
    parentPort.postMessage({ type: "connected" });
  } else if (m.type === "drive") {
    await Promise.all(Array.from({ length: m.concurrency }, async () => {
      while (sent < m.until) {
        sent++;
        try {
          const res = await client.getUserByID({ userId: m.userId });
          if (res.user && res.user.userId === m.userId) answered++;
          else failed++;
        } catch {
          failed++;
        }
      }
    }));
    parentPort.postMessage({ type: "driven", answered, failed, targetCalls });
  } else if (m.type === "count") {
    parentPort.postMessage({ type: "count", targetCalls });
  } else if (m.type === "close") {
    target.closeAllConnections();
    target.close(() => parentPort.close());
  }
});
`;

/** The file of the UserService and every file it imports, dependencies first. */
function descriptorSet(file: DescFile): Uint8Array {
  const files: DescFile[] = [];
  const visit = (f: DescFile) => {
    if (files.includes(f)) return;
    f.dependencies.forEach(visit);
    files.push(f);
  };
  visit(file);
  return toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, { file: files.map((f) => f.proto) }));
}

/** The load worker, as seen from the main thread. */
interface LoadWorker {
  readonly targetUrl: string;
  request<T extends Record<string, unknown>>(message: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

async function startLoadWorker(): Promise<LoadWorker> {
  const worker = new Worker(loadWorkerSource, { eval: true, workerData: { descriptors: descriptorSet(file_zitadel_user_v2_user_service) } });
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
    });
  const { port } = await next<{ port: number }>();
  return {
    targetUrl: `http://127.0.0.1:${port}`,
    async request<T>(message: Record<string, unknown>) {
      const answer = next<T>();
      worker.postMessage(message);
      return answer;
    },
    async close() {
      const exited = new Promise((resolve) => worker.once("exit", resolve));
      worker.postMessage({ type: "close" });
      await exited;
    },
  };
}

interface HeapFigures {
  readonly heapUsed: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly rss: number;
}

/** Collects garbage until the heap stops shrinking, then reads the memory figures. */
async function settledHeap(): Promise<HeapFigures> {
  let last = Infinity;
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
    const used = process.memoryUsage().heapUsed;
    if (last - used < 64 * 1024) break;
    last = used;
  }
  const { heapUsed, external, arrayBuffers, rss } = process.memoryUsage();
  return { heapUsed, external, arrayBuffers, rss };
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(2)} MiB`;

let server: InterceptedServer;
let load: LoadWorker;
let calls = 0;
let failures = 0;

beforeAll(async () => {
  load = await startLoadWorker();
  // A dispatcher that counts its calls instead of keeping their records.
  const dispatcher = createTargetDispatcher({
    logger: silentLogger,
    onCall: (r) => {
      calls++;
      if (r.error !== undefined) failures++;
    },
  });
  server = await startInterceptedServer({ dispatcher, logger: silentLogger });
  const webhook = await server.store.createTarget({
    name: "flat-webhook", type: "webhook", interruptOnError: true, endpoint: `${load.targetUrl}/request`, timeoutMs: 10_000,
  });
  const async = await server.store.createTarget({ name: "flat-async", type: "async", endpoint: `${load.targetUrl}/response`, timeoutMs: 10_000 });
  const method = "/zitadel.user.v2.UserService/GetUserByID";
  await server.store.setExecution({ type: "request", method }, [{ target: webhook.id }]);
  await server.store.setExecution({ type: "response", method }, [{ target: async.id }]);
  await load.request({ type: "connect", url: server.url });
});
afterAll(async () => {
  await server?.close();
  await load?.close();
});

describe("memory under load", () => {
  it(`stays flat over ${TOTAL} intercepted requests (heap growth from request ${WARMUP} below ${mib(MAX_GROWTH_BYTES)})`, async () => {
    // GetUserByID stores nothing, so whatever grows is kept by the server, the interceptor or the dispatcher.
    const { userId } = await server.client("connect").addHumanUser(addUser("Flat"));
    const drive = async (until: number) => {
      const result = await load.request<{ answered: number; failed: number }>({ type: "drive", until, userId, concurrency: CONCURRENCY });
      await server.dispatcher.idle();
      return result;
    };

    const started = performance.now();
    await drive(WARMUP);
    const warm = await settledHeap();
    const { answered, failed } = await drive(TOTAL);
    const done = await settledHeap();
    const seconds = (performance.now() - started) / 1000;
    const { targetCalls } = await load.request<{ targetCalls: number }>({ type: "count" });

    const growth = done.heapUsed - warm.heapUsed;
    console.log(
      `heap after ${WARMUP}: ${mib(warm.heapUsed)}, after ${TOTAL}: ${mib(done.heapUsed)}, growth ${mib(growth)} ` +
        `(${(growth / (TOTAL - WARMUP)).toFixed(1)} B/request); external ${mib(warm.external)} -> ${mib(done.external)}, ` +
        `arrayBuffers ${mib(warm.arrayBuffers)} -> ${mib(done.arrayBuffers)}, rss ${mib(warm.rss)} -> ${mib(done.rss)}; ` +
        `${TOTAL} requests in ${seconds.toFixed(1)} s`,
    );
    expect({ answered, failed }).toEqual({ answered: TOTAL, failed: 0 });
    // Every request called the webhook and fired the async target, and all of them succeeded.
    expect({ calls, failures, targetCalls }).toEqual({ calls: 2 * TOTAL, failures: 0, targetCalls: 2 * TOTAL });
    expect(growth).toBeLessThan(MAX_GROWTH_BYTES);
  }, 180_000);
});
