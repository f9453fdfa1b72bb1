// `npm run bench`: measures, in one run, what actions cost a Connect service.
//
// Load tests (Connect JSON over HTTP/1.1 keep-alive, undici client in this process; the
// sample servers of all configurations share one process, the bench target has another):
//   plain    the sample server without the actions interceptor
//   nomatch  with the interceptor, 10 000 targets and executions, none matching
//   webhook  one webhook target on the request of the called method
//   call     one call target on the request of the called method
//   async    one async target on the response of the called method
//   rawcall  the sample server with a hand-written interceptor that POSTs to the same target
//   webhook-bare  the rawcall server with, in place of that interceptor, createActions' interceptor
//            (memory store, no delivery log, no metrics, no worker) and one webhook target: the
//            fair pair of rawcall (webhook runs with the sample's metrics and delivery log)
//   raw      a plain undici keep-alive POST of a webhook-sized payload to the same target
// Each is measured sequentially (1 connection: latency) and with --connections
// connections (throughput), in --rounds interleaved rounds; medians are printed.
//
// Microbenchmark (in this process): execution resolution with 0 and with
// 10 000 targets and executions.
//
// Scale sections (bench/scale.ts, on PostgreSQL at DATABASE_URL): writes, compile, replica, instances.
//
// Events (bench/events.ts, on PostgreSQL at DATABASE_URL, default
// postgres://postgres@127.0.0.1:5432/postgres, in a throwaway database): this project's event
// queue against graphile-worker end to end, the cost of an event on a write, memory per queued event.
//
// Options: --duration <s> (default 5) --connections <n> (default 16) --rounds <n> (default 3)
//          --quick (1 s, 1 round) --markdown (print tables as Markdown)
//          --sections <list> (comma-separated, default all: resolution,interceptor,load,writes,compile,replica,instances,events)
//          --events (only the events section) --no-events (all but the events section)
//          --scale-size <n> (targets and executions of the large instance, default 100000)
//          --instances <n> (instances of the instances section, default 10000)
//          --iterations <n> (writes of each kind per server and round, default 40; --quick 10)
import { readFileSync } from "node:fs";
import { type Dispatcher, Pool } from "undici";
import { create } from "@bufbuild/protobuf";
import { createContextValues, type Interceptor, type UnaryRequest } from "@connectrpc/connect";
import { GetUserByIDRequestSchema, GetUserByIDResponseSchema, UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import { createActionsInterceptor } from "../src/actions-interceptor.js";
import { executionId } from "../src/condition.js";
import { silentLogger } from "../src/logger.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { createTargetDispatcher, type TargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { compileExecutionPlan } from "../src/plan/execution-plan.js";
import type { Execution } from "../src/execution.js";
import type { Target } from "../src/target.js";
import { scaleBench } from "./scale.js";
import { startBenchChild } from "./bench-child.js";
import { post } from "./bench-http.js";
import { fmt, median, summary } from "./bench-stats.js";
import { eventsBench } from "./events.js";

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const quick = flag("quick");
const durationMs = option("duration", quick ? 1 : 5) * 1000;
const connections = option("connections", 16);
const rounds = option("rounds", quick ? 1 : 3);
const markdown = flag("markdown");
const allSections = ["resolution", "interceptor", "load", "writes", "compile", "replica", "instances", "events"];
const sectionsArg = args.indexOf("--sections");
const sections = new Set(
  flag("events") ? ["events"] : sectionsArg >= 0 ? args[sectionsArg + 1]!.split(",") : allSections.filter((s) => s !== "events" || !flag("no-events")),
);
for (const section of sections) if (!allSections.includes(section)) throw new Error(`unknown section "${section}"`);

interface Sample {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  /** CPU time the server process used per request, in µs (NaN where unknown). */
  readonly cpu: number;
}

/** cpuMs returns the user + system CPU time of a process in ms, from /proc (Linux), or NaN. */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return NaN;
  }
}
const clockTicks = 100;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

/** Runs `connections` closed loops of `send` for `durationMs`; latencies in ms; `pid` is the server's. */
async function load(send: () => Promise<void>, conns: number, pid?: number): Promise<Sample> {
  const latencies: number[] = [];
  const until = performance.now() + durationMs;
  const warmUntil = performance.now() + Math.min(1000, durationMs / 5);
  let counted = 0;
  let countStart = 0;
  let cpuStart = NaN;
  let cpuCount = 0;
  const warm = setTimeout(() => {
    cpuStart = cpuMs(pid);
    cpuCount = counted;
  }, Math.min(1000, durationMs / 5));
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await send();
        const t1 = performance.now();
        if (t0 >= warmUntil) {
          if (countStart === 0) countStart = t0;
          latencies.push(t1 - t0);
          counted++;
        }
      }
    }),
  );
  clearTimeout(warm);
  const cpu = ((cpuMs(pid) - cpuStart) * 1000) / (counted - cpuCount);
  latencies.sort((a, b) => a - b);
  return { rps: counted / ((until - countStart) / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99), cpu };
}


function table(title: string, head: string[], rows: (string | number)[][]): void {
  console.log(`\n${markdown ? "### " : ""}${title}\n`);
  if (markdown) {
    console.log(`| ${head.join(" | ")} |`);
    console.log(`|${head.map(() => "---").join("|")}|`);
    for (const r of rows) console.log(`| ${r.join(" | ")} |`);
    return;
  }
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: (string | number)[]) => cells.map((c, i) => String(c).padStart(widths[i]!)).join("  ");
  console.log(line(head));
  for (const r of rows) console.log(line(r));
}

async function loadTests(): Promise<void> {
  const modes = ["plain", "nomatch", "webhook", "call", "async", "rawcall", "webhook-bare"] as const;
  const target = await startBenchChild("target-server.ts");
  const targetUrl = `http://127.0.0.1:${target.ports[0]}`;
  const servers = new Map<string, { pool: Pool; body: string }>();
  const sample = await startBenchChild("sample-server.ts", [modes.join(","), targetUrl]);
  try {
    for (const [i, mode] of modes.entries()) {
      const pool = new Pool(`http://127.0.0.1:${sample.ports[i]}`, { connections, pipelining: 1 });
      const added = JSON.parse(
        await post(pool, "/zitadel.user.v2.UserService/AddHumanUser", JSON.stringify({ profile: { givenName: "Bench", familyName: "User" }, email: { email: "bench@example.com" } })),
      ) as { userId: string };
      servers.set(mode, { pool, body: JSON.stringify({ userId: added.userId }) });
    }
    const rawPool = new Pool(targetUrl, { connections, pipelining: 1 });
    // A payload of the size the webhook target receives for GetUserByID.
    const rawBody = JSON.stringify({
      fullMethod: "/zitadel.user.v2.UserService/GetUserByID",
      instanceID: "sample-instance",
      request: { userId: "297421523617239040" },
      headers: { "Content-Type": ["application/json"], Host: ["127.0.0.1:8080"] },
    });
    // How long the target calls themselves took inside the server since `since`: from its delivery log.
    const inServer = async (name: string, since: Date) => {
      const s = servers.get(name)!;
      const res = await s.pool.request({
        path: "/v2/actions/targets/calls/search", method: "POST",
        headers: { "content-type": "application/json", authorization: "Bearer bench-admin-token" },
        body: JSON.stringify({ pagination: { limit: 1000 }, since: since.toISOString() }),
      });
      const { calls = [] } = (await res.body.json()) as { calls?: { duration?: string }[] };
      const ms = calls.map((c) => parseFloat(c.duration ?? "0") * 1000);
      return ms.length === 0 ? NaN : median(ms);
    };
    const webhookCallInServer: number[] = [];
    const results = new Map<string, { lat: Sample[]; thr: Sample[] }>();
    const names = [...modes, "raw"];
    for (const n of names) results.set(n, { lat: [], thr: [] });
    // Warm-up: every configuration under load once (JIT, connections), unmeasured.
    for (const name of names) {
      const s = servers.get(name);
      const send = s === undefined
        ? () => post(rawPool, "/hook", rawBody).then(() => undefined)
        : () => post(s.pool, "/zitadel.user.v2.UserService/GetUserByID", s.body).then(() => undefined);
      const until = performance.now() + Math.min(2000, durationMs);
      await Promise.all(Array.from({ length: connections }, async () => {
        while (performance.now() < until) await send();
      }));
    }
    for (let round = 1; round <= rounds; round++) {
      // Every other round runs the configurations in reverse order, so drift favours none.
      for (const name of round % 2 === 1 ? names : [...names].reverse()) {
        const send =
          name === "raw"
            ? () => post(rawPool, "/hook", rawBody).then(() => undefined)
            : (() => {
                const s = servers.get(name)!;
                return () => post(s.pool, "/zitadel.user.v2.UserService/GetUserByID", s.body).then(() => undefined);
              })();
        const since = new Date();
        const pid = name === "raw" ? target.child.pid : sample.child.pid;
        results.get(name)!.lat.push(await load(send, 1, pid));
        if (name === "webhook") webhookCallInServer.push(await inServer(name, since));
        results.get(name)!.thr.push(await load(send, connections, pid));
        process.stderr.write(`round ${round}/${rounds}: ${name} done\n`);
      }
    }
    const m = (name: string, phase: "lat" | "thr", key: keyof Sample) => median(results.get(name)![phase].map((s) => s[key]));
    table(
      `Load (medians of ${rounds} round(s), ${durationMs / 1000} s each; latency in ms; CPU of the server process, for raw of the target)`,
      ["config", "seq req/s", "seq p50", "seq p99", "seq CPU µs/req", `c=${connections} req/s`, `c=${connections} p50`, `c=${connections} p99`, `c=${connections} CPU µs/req`],
      names.map((n) => [
        n, fmt(m(n, "lat", "rps"), 0), fmt(m(n, "lat", "p50"), 3), fmt(m(n, "lat", "p99"), 3), fmt(m(n, "lat", "cpu"), 0),
        fmt(m(n, "thr", "rps"), 0), fmt(m(n, "thr", "p50"), 3), fmt(m(n, "thr", "p99"), 3), fmt(m(n, "thr", "cpu"), 0),
      ]),
    );
    // Ratios are computed within each round (configurations measured minutes apart drift on a
    // shared machine), then summarized: median [min .. max] over the rounds.
    const at = (name: string, phase: "lat" | "thr", key: keyof Sample, round: number) => results.get(name)![phase][round]![key];
    const perRound = (f: (r: number) => number) => Array.from({ length: rounds }, (_, r) => f(r));
    const added = (name: string, r: number) => at(name, "lat", "p50", r) - at("plain", "lat", "p50", r);
    table(`Ratios (median [min .. max] of the ${rounds} rounds' own ratios)`, ["measure", "value", "goal"], [
      ["no-match overhead, throughput (1 - nomatch/plain)", summary(perRound((r) => (1 - at("nomatch", "thr", "rps", r) / at("plain", "thr", "rps", r)) * 100), 1, " %"), "<= 3 %"],
      ["no-match overhead, server CPU per request at c=16 (nomatch/plain - 1)", summary(perRound((r) => (at("nomatch", "thr", "cpu", r) / at("plain", "thr", "cpu", r) - 1) * 100), 1, " %"), "<= 3 %"],
      ["no-match overhead, sequential p50 (nomatch/plain - 1)", summary(perRound((r) => (at("nomatch", "lat", "p50", r) / at("plain", "lat", "p50", r) - 1) * 100), 1, " %"), "<= 3 %"],
      ["webhook added p50 / raw POST p50", summary(perRound((r) => added("webhook", r) / at("raw", "lat", "p50", r))), "<= 1.2"],
      ["hand-written raw-POST interceptor added p50 / raw POST p50 (the floor)", summary(perRound((r) => added("rawcall", r) / at("raw", "lat", "p50", r))), "-"],
      ["webhook added p50 / hand-written raw-POST interceptor added p50", summary(perRound((r) => added("webhook", r) / added("rawcall", r))), "-"],
      ["webhook call measured inside the server p50 / raw POST p50", summary(perRound((r) => webhookCallInServer[r]! / at("raw", "lat", "p50", r))), "-"],
      ["call added p50 / raw POST p50", summary(perRound((r) => added("call", r) / at("raw", "lat", "p50", r))), "-"],
      ["async added p50 (ms)", summary(perRound((r) => added("async", r)), 3), "~0"],
      ["webhook-bare / rawcall, server CPU per request, sequential", summary(perRound((r) => at("webhook-bare", "lat", "cpu", r) / at("rawcall", "lat", "cpu", r))), "<= 1.10"],
      [`webhook-bare / rawcall, server CPU per request, c=${connections}`, summary(perRound((r) => at("webhook-bare", "thr", "cpu", r) / at("rawcall", "thr", "cpu", r))), "<= 1.10"],
      ["webhook / rawcall, server CPU per request, sequential (sample: metrics, delivery log)", summary(perRound((r) => at("webhook", "lat", "cpu", r) / at("rawcall", "lat", "cpu", r))), "-"],
      [`webhook / rawcall, server CPU per request, c=${connections} (sample: metrics, delivery log)`, summary(perRound((r) => at("webhook", "thr", "cpu", r) / at("rawcall", "thr", "cpu", r))), "-"],
      ["call / webhook, server CPU per request, sequential", summary(perRound((r) => at("call", "lat", "cpu", r) / at("webhook", "lat", "cpu", r))), "<= 1.15"],
      [`call / webhook, server CPU per request, c=${connections}`, summary(perRound((r) => at("call", "thr", "cpu", r) / at("webhook", "thr", "cpu", r))), "<= 1.15"],
      ["webhook throughput / plain", summary(perRound((r) => at("webhook", "thr", "rps", r) / at("plain", "thr", "rps", r))), "-"],
    ]);
    await rawPool.close();
  } finally {
    for (const s of servers.values()) await s.pool.close();
    sample.child.kill("SIGTERM");
    target.child.kill("SIGTERM");
  }
}

function resolutionBench(): void {
  const date = new Date();
  const build = (n: number) => {
    const targets: Target[] = [];
    const executions: Execution[] = [];
    for (let i = 0; i < n; i++) {
      targets.push({ id: `t${i}`, instanceId: "", name: `t${i}`, type: "webhook", interruptOnError: false, endpoint: "http://x/", timeoutMs: 1000, signingKey: "k", payloadType: "json", creationDate: date, changeDate: date });
      const condition = { type: "request" as const, method: `/bench.v1.Service${i % 100}/Method${i}` };
      executions.push({ id: executionId(condition), condition, targets: [{ target: `t${i}` }], creationDate: date, changeDate: date });
    }
    return { targets, executions };
  };
  const lookups = 2_000_000;
  const probe = ["/zitadel.user.v2.UserService/GetUserByID", "/bench.v1.Service7/Method7", "/bench.v1.Service99/Method4999", "/other.v1.S/M"];
  const rows: (string | number)[][] = [];
  const perOp: number[] = [];
  const sizes = [0, 1_000, 10_000, 100_000];
  for (const n of sizes) {
    const snapshot = build(n);
    const c0 = performance.now();
    const plan = compileExecutionPlan(snapshot);
    const compileMs = performance.now() - c0;
    let hits = 0;
    for (let i = 0; i < 100_000; i++) if (plan.forMethod(probe[i & 3]!).request) hits++; // warm-up
    const t0 = performance.now();
    for (let i = 0; i < lookups; i++) if (plan.forMethod(probe[i & 3]!).request) hits++;
    const ns = ((performance.now() - t0) * 1e6) / lookups;
    perOp.push(ns);
    let eventNs = 0;
    const e0 = performance.now();
    for (let i = 0; i < lookups; i++) if (plan.forEvent("user.human.added")) hits++;
    eventNs = ((performance.now() - e0) * 1e6) / lookups;
    rows.push([n, fmt(compileMs, 1), fmt(ns, 1), fmt(eventNs, 1), hits > 0 ? "yes" : "no"]);
  }
  table("Execution resolution (in process)", ["targets = executions", "compile ms", "forMethod ns/op", "forEvent ns/op", "matches seen"], rows);
  table("Resolution ratio", ["measure", "value", "goal"], [
    ["forMethod ns/op at 10 000 / at 1 000", fmt(perOp[2]! / perOp[1]!), "~1 (O(1))"],
    ["forMethod ns/op at 100 000 / at 1 000", fmt(perOp[3]! / perOp[1]!), "~1 (O(1))"],
  ]);
}

/**
 * The interceptor's own CPU cost per call, in process: a call with no matching
 * execution, one with a webhook whose target dispatcher is stubbed out (so only
 * the interceptor's work is measured: context, payload, hand-off), and one
 * with the real dispatcher over an undici Dispatcher that answers at once
 * (adding the span, signing, exchange and record; everything but the network).
 */
async function interceptorBench(): Promise<void> {
  const store = createMemoryStore({ maxTargetsPerInstance: Infinity, maxExecutionsPerInstance: Infinity });
  for (let i = 0; i < 10_000; i++) {
    const t = await store.createTarget({ name: `t${i}`, type: "webhook", endpoint: "http://127.0.0.1:9/", timeoutMs: 1000 });
    await store.setExecution({ type: "request", method: `/bench.v1.Service${i % 100}/Method${i}` }, [{ target: t.id }]);
  }
  const stub: TargetDispatcher = { call: async () => ({ status: 200, json: undefined }), fire() {}, idle: async () => {}, close: async () => {} };
  const method = UserService.method.getUserByID;
  const response = create(GetUserByIDResponseSchema, {});
  const next = (async (req: UnaryRequest) => ({
    stream: false, service: UserService, method, header: new Headers(), trailer: new Headers(), message: response, contextValues: req.contextValues,
  })) as unknown as Parameters<Interceptor>[0];
  const signal = new AbortController().signal;
  const request = (m: typeof method = method) =>
    ({
      stream: false, service: UserService, method: m, requestMethod: "POST", url: "http://127.0.0.1:8080/zitadel.user.v2.UserService/GetUserByID",
      signal, header: new Headers({ "content-type": "application/json", host: "127.0.0.1:8080" }), contextValues: createContextValues(),
      message: create(GetUserByIDRequestSchema, { userId: "297421523617239040" }),
    }) as unknown as UnaryRequest;
  const intercepted = createActionsInterceptor({ store, dispatcher: stub, logger: silentLogger })(next);
  // The real target dispatcher (span, signing, exchange, deadline check, record) over an undici
  // Dispatcher that answers 200 with no body at once: everything but the network.
  const controller = { aborted: false, paused: false, reason: null, abort() {}, pause() {}, resume() {} } as unknown as Dispatcher.DispatchController;
  const noNetwork = {
    dispatch(_options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
      handler.onRequestStart?.(controller, {});
      queueMicrotask(() => {
        handler.onResponseStart?.(controller, 200, {}, "OK");
        handler.onResponseEnd?.(controller, {});
      });
      return true;
    },
  } as unknown as Dispatcher;
  const realDispatcher = createTargetDispatcher({ dispatcher: noNetwork, logger: silentLogger, onCall: () => {} });
  const interceptedReal = createActionsInterceptor({ store, dispatcher: realDispatcher, logger: silentLogger })(next);
  // A webhook execution on GetUserByID; ListUsers has none.
  const t = await store.createTarget({ name: "hook", type: "webhook", endpoint: "http://127.0.0.1:9/hook", timeoutMs: 1000 });
  await store.setExecution({ type: "request", method: "/zitadel.user.v2.UserService/GetUserByID" }, [{ target: t.id }]);
  const listUsers = UserService.method.listUsers as unknown as typeof method;
  const paths: [string, () => Promise<unknown>][] = [
    ["baseline", () => next(request(listUsers))],
    ["none", () => intercepted(request(listUsers))],
    ["hook", () => intercepted(request())],
    ["real", () => interceptedReal(request())],
  ];
  const samples = new Map<string, number[]>(paths.map(([name]) => [name, []]));
  const batch = 20_000;
  for (let round = 0; round < 12; round++) {
    for (const [name, fn] of paths) {
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) await fn();
      if (round >= 2) samples.get(name)!.push(((performance.now() - t0) * 1000) / batch);
    }
  }
  const base = median(samples.get("baseline")!);
  const none = median(samples.get("none")!);
  const hook = median(samples.get("hook")!);
  const real = median(samples.get("real")!);
  table("Interceptor CPU per call (in process, 10 000 executions on other methods; µs, median of 10 interleaved batches)", ["path", "µs/call", "added µs"], [
    ["handler only (baseline)", fmt(base, 2), "-"],
    ["no matching execution", fmt(none, 2), fmt(none - base, 2)],
    ["one webhook, target dispatcher stubbed", fmt(hook, 2), fmt(hook - base, 2)],
    ["one webhook, real dispatcher, no network", fmt(real, 2), fmt(real - base, 2)],
  ]);
}

console.log(`connect-actions bench: node ${process.version}, ${new Date().toISOString()}, duration ${durationMs / 1000} s, rounds ${rounds}, connections ${connections}`);
if (sections.has("resolution")) resolutionBench();
if (sections.has("interceptor")) await interceptorBench();
if (sections.has("load")) await loadTests();
if (["writes", "compile", "replica", "instances"].some((s) => sections.has(s))) {
  await scaleBench({
    table,
    databaseUrl: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres",
    sections,
    size: option("scale-size", 100_000),
    instances: option("instances", 10_000),
    rounds,
    iterations: option("iterations", quick ? 10 : 40),
  });
}
if (sections.has("events")) {
  const databaseUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
  console.log(`\nEvents on ${databaseUrl.replace(/\/\/[^@/]*@/, "//")}`);
  await eventsBench({ databaseUrl, durationMs, rounds, connections, table });
}
