// Scale sections of `npm run bench` (issue 10 writes, issue 12 scale), all on PostgreSQL at DATABASE_URL
// (default postgres://postgres@127.0.0.1:5432/postgres), in schemas made for the run and dropped after it:
//   writes     CreateTarget, SetExecution and DeleteTarget through the ActionService of two sample
//              servers (child processes, the sample's planner), one on an empty store and one on a
//              store with --scale-size targets and executions, each write followed by an intercepted
//              request, in interleaved rounds; p50s side by side with their ratio; resident memory
//   compile    a full compilation of the --scale-size instance: read (snapshot) and compile
//   replica    how soon a planner on another store object (replica) sees a change, at --scale-size:
//              notifications with IDs (incremental) and without (full recompile), side by side
//   instances  --instances instances with 100 executions each: first-use compile time, per-request
//              resolution at 1, 1 000 and --instances instances, memory, eviction, one instance's change
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import pg from "pg";
import { Pool } from "undici";
import { create } from "@bufbuild/protobuf";
import { createContextValues, type Interceptor, type UnaryRequest } from "@connectrpc/connect";
import { GetUserByIDRequestSchema, GetUserByIDResponseSchema, UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import { createActionsInterceptor } from "../src/actions-interceptor.js";
import type { TargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { silentLogger } from "../src/logger.js";
import { compileExecutionPlan, type ExecutionPlan } from "../src/plan/execution-plan.js";
import { createExecutionPlanner, type ExecutionPlanner } from "../src/plan/execution-planner.js";
import { createPostgresStore, type PostgresStore } from "../src/postgres/store.js";
import { fmt, median, summary } from "./bench-stats.js";
import { seedInstances } from "./scale-data.js";

/** The bench fills one instance far beyond the default caps per instance. */
const unbounded = { maxTargetsPerInstance: Infinity, maxExecutionsPerInstance: Infinity };

/** What run.ts passes in: how to print a table, and the run's options. */
export interface ScaleBenchOptions {
  readonly table: (title: string, head: string[], rows: (string | number)[][]) => void;
  readonly databaseUrl: string;
  readonly sections: ReadonlySet<string>;
  /** Targets and executions of the large instance. */
  readonly size: number;
  /** Instances of the instances section. */
  readonly instances: number;
  readonly rounds: number;
  /** Writes of each kind per server and round. */
  readonly iterations: number;
}

const here = fileURLToPath(new URL(".", import.meta.url));
const sampleInstance = "sample-instance";

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
};
const mib = (bytes: number) => fmt(bytes / 1024 / 1024, 1);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** rssOf returns the resident memory of a process in bytes, from /proc (Linux), or NaN. */
function rssOf(pid: number | undefined): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"));
    return Number(line!.split(/\s+/)[1]) * 1024;
  } catch {
    return NaN;
  }
}

/** gc runs a full garbage collection (the flag is set at run time, so plain `tsx` works). */
const gc: () => void = (() => {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
})();
const heapAfterGc = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

async function startServer(databaseUrl: string, schema: string): Promise<{ port: number; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", here + "scale-server.ts", databaseUrl, schema], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, "line")) as [string];
  return { port: Number(line.trim()), child };
}

/** A schema for this run, migrated by a store opened on it and closed again. */
async function newSchema(databaseUrl: string, name: string): Promise<string> {
  const schema = `bench_${name}_${process.pid}`;
  const store = await createPostgresStore({ connectionString: databaseUrl, schema, logger: silentLogger, ...unbounded });
  await store.close();
  return schema;
}

export async function scaleBench(options: ScaleBenchOptions): Promise<void> {
  const { databaseUrl, sections, size } = options;
  const admin = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  const schemas: string[] = [];
  try {
    let full: string | undefined;
    if (sections.has("writes") || sections.has("compile") || sections.has("replica")) {
      const empty = await newSchema(databaseUrl, "empty");
      schemas.push(empty);
      full = await newSchema(databaseUrl, "full");
      schemas.push(full);
      const t0 = performance.now();
      await seedInstances(admin, full, sampleInstance, 1, { targets: size, executions: size, services: 100 }, true);
      process.stderr.write(`scale: seeded ${size} targets and executions in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
      if (sections.has("writes")) await writesBench(options, empty, full);
    }
    if (full !== undefined && sections.has("compile")) await compileBench(options, full);
    if (full !== undefined && sections.has("replica")) await replicaBench(options, full);
    if (sections.has("instances")) {
      const many = await newSchema(databaseUrl, "instances");
      schemas.push(many);
      const t0 = performance.now();
      await seedInstances(admin, many, "inst-", options.instances, { targets: 10, executions: 100, services: 10 });
      process.stderr.write(
        `scale: seeded ${options.instances} instances x 100 executions in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
      );
      await instancesBench(options, many);
    }
  } finally {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await admin.end();
  }
}

// --- writes ------------------------------------------------------------------------------------

type WriteOp = "CreateTarget" | "SetExecution" | "DeleteTarget" | "request after a write";
const writeOps: WriteOp[] = ["CreateTarget", "SetExecution", "DeleteTarget", "request after a write"];

async function writesBench(options: ScaleBenchOptions, emptySchema: string, fullSchema: string): Promise<void> {
  const servers = [
    { name: "empty", ...(await startServer(options.databaseUrl, emptySchema)) },
    { name: "full", ...(await startServer(options.databaseUrl, fullSchema)) },
  ];
  const auth = { "content-type": "application/json", authorization: "Bearer bench-admin-token" };
  try {
    const clients = new Map<string, { pool: Pool; user: string }>();
    const call = async (pool: Pool, path: string, body: unknown, headers: Record<string, string> = auth): Promise<unknown> => {
      const res = await pool.request({ path, method: "POST", headers, body: JSON.stringify(body) });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${path}: status ${res.statusCode}: ${text}`);
      return JSON.parse(text);
    };
    const actionService = "/zitadel.action.v2beta.ActionService";
    const firstRequest: Record<string, number> = {};
    for (const s of servers) {
      const pool = new Pool(`http://127.0.0.1:${s.port}`, { connections: 1, pipelining: 1 });
      // The first intercepted request compiles the instance's plan in full.
      const t0 = performance.now();
      const { userId } = (await call(pool, "/zitadel.user.v2.UserService/AddHumanUser", {
        profile: { givenName: "Bench", familyName: "User" },
        email: { email: "bench@example.com" },
      }, { "content-type": "application/json" })) as { userId: string };
      firstRequest[s.name] = performance.now() - t0;
      const { id } = (await call(pool, `${actionService}/CreateTarget`, {
        name: "bench-base", restWebhook: {}, endpoint: "http://127.0.0.1:9/hook", timeout: "5s",
      })) as { id: string };
      await call(pool, `${actionService}/SetExecution`, {
        condition: { request: { method: "/zitadel.user.v2.UserService/ListUsers" } },
        targets: [id],
      });
      clients.set(s.name, { pool, user: userId });
    }
    const samples = new Map<string, Map<WriteOp, number[][]>>(
      servers.map((s) => [s.name, new Map(writeOps.map((op) => [op, [] as number[][]]))]),
    );
    let serial = 0;
    const iteration = async (name: string, into: Map<WriteOp, number[]>) => {
      const { pool, user } = clients.get(name)!;
      const timed = async (op: WriteOp, fn: () => Promise<unknown>) => {
        const t0 = performance.now();
        const result = await fn();
        into.get(op)!.push(performance.now() - t0);
        return result;
      };
      // An intercepted request after every write: it brings the plan up to date first.
      const intercepted = () =>
        timed("request after a write", () =>
          call(pool, "/zitadel.user.v2.UserService/GetUserByID", { userId: user }, { "content-type": "application/json" }),
        );
      const { id } = (await timed("CreateTarget", () =>
        call(pool, `${actionService}/CreateTarget`, {
          name: `bench-${process.pid}-${++serial}`, restWebhook: {}, endpoint: "http://127.0.0.1:9/hook", timeout: "5s",
        }),
      )) as { id: string };
      await intercepted();
      await timed("SetExecution", () =>
        call(pool, `${actionService}/SetExecution`, {
          condition: { request: { method: "/zitadel.user.v2.UserService/DeleteUser" } },
          targets: [id],
          includes: [{ request: { method: "/zitadel.user.v2.UserService/ListUsers" } }],
        }),
      );
      await intercepted();
      // The target is named by the execution: the deletion cascades into it.
      await timed("DeleteTarget", () => call(pool, `${actionService}/DeleteTarget`, { id }));
      await intercepted();
    };
    // Warm-up, unmeasured.
    for (const s of servers) for (let i = 0; i < Math.min(5, options.iterations); i++) await iteration(s.name, new Map(writeOps.map((op) => [op, []])));
    for (let round = 1; round <= options.rounds; round++) {
      for (const s of round % 2 === 1 ? servers : [...servers].reverse()) {
        const into = new Map<WriteOp, number[]>(writeOps.map((op) => [op, []]));
        for (let i = 0; i < options.iterations; i++) await iteration(s.name, into);
        for (const op of writeOps) samples.get(s.name)!.get(op)!.push(into.get(op)!);
      }
      process.stderr.write(`scale writes: round ${round}/${options.rounds} done\n`);
    }
    const all = (name: string, op: WriteOp) => samples.get(name)!.get(op)!.flat();
    const roundP50 = (name: string, op: WriteOp) => samples.get(name)!.get(op)!.map((xs) => median(xs));
    options.table(
      `Writes through the ActionService on PostgreSQL, each followed by an intercepted request (ms; ${options.rounds} rounds x ${options.iterations} of each; ratio: median [min .. max] of the rounds' p50 ratios)`,
      ["operation", "empty p50", "empty p99", `${options.size} p50`, `${options.size} p99`, `ratio ${options.size} / empty`, "goal"],
      writeOps.map((op) => {
        const ratios = roundP50("full", op).map((p, r) => p / roundP50("empty", op)[r]!);
        return [
          op,
          fmt(median(all("empty", op)), 3),
          fmt(percentile(all("empty", op), 99), 3),
          fmt(median(all("full", op)), 3),
          fmt(percentile(all("full", op), 99), 3),
          summary(ratios),
          op === "CreateTarget" || op === "SetExecution" ? "<= 1.5" : "-",
        ];
      }),
    );
    options.table("Sample servers (one process each)", ["store", "first intercepted request (ms; compiles the plan)", "resident memory MiB"], [
      ["empty", fmt(firstRequest.empty!, 1), mib(rssOf(servers[0]!.child.pid))],
      [`${options.size} targets and executions`, fmt(firstRequest.full!, 1), mib(rssOf(servers[1]!.child.pid))],
    ]);
    for (const { pool } of clients.values()) await pool.close();
  } finally {
    for (const s of servers) {
      s.child.kill("SIGTERM");
      await once(s.child, "exit");
    }
  }
}

// --- compile -----------------------------------------------------------------------------------

async function compileBench(options: ScaleBenchOptions, schema: string): Promise<void> {
  const store = await createPostgresStore({ connectionString: options.databaseUrl, schema, logger: silentLogger, ...unbounded });
  try {
    const view = store.forInstance(sampleInstance);
    const read: number[] = [];
    const compile: number[] = [];
    const cpu: number[] = [];
    const planned: number[] = [];
    // Timings in a function of their own, so that nothing it read stays reachable for the heap measurement.
    const time = async () => {
      const t0 = performance.now();
      const snapshot = await view.snapshot();
      const t1 = performance.now();
      const c0 = process.cpuUsage();
      compileExecutionPlan(snapshot);
      const c1 = process.cpuUsage(c0);
      compile.push(performance.now() - t1);
      cpu.push((c1.user + c1.system) / 1000);
      read.push(t1 - t0);
      // Through a planner: what the first request after a change of unknown extent waits for.
      const planner = createExecutionPlanner(store, { maxPlanBytes: Infinity });
      const p0 = performance.now();
      await planner.plan(sampleInstance);
      planned.push(performance.now() - p0);
      planner.close();
    };
    for (let i = 0; i < Math.max(3, options.rounds); i++) await time();
    const held = async () => {
      const base = heapAfterGc();
      const planner = createExecutionPlanner(store, { maxPlanBytes: Infinity });
      await planner.plan(sampleInstance);
      const heap = heapAfterGc() - base;
      planner.close();
      return { heap, estimated: planner.stats().estimatedBytes };
    };
    const { heap, estimated } = await held();
    options.table(
      `Full compilation of ${options.size} targets and executions (ms, median of ${read.length}; in this process)`,
      ["step", "ms", "goal"],
      [
        ["read the instance from PostgreSQL (snapshot)", fmt(median(read), 0), "-"],
        ["compile (compileExecutionPlan)", fmt(median(compile), 0), "< 1000"],
        ["compile, CPU time", fmt(median(cpu), 0), "-"],
        ["both, through a new planner (first use)", fmt(median(planned), 0), "-"],
      ],
    );
    options.table(`Plan of ${options.size} targets and executions in memory`, ["measure", "MiB"], [
      ["heap held by the planner (after GC)", mib(heap)],
      ["planner's estimate (stats().estimatedBytes)", mib(estimated)],
    ]);
  } finally {
    await store.close();
  }
}

// --- replica -----------------------------------------------------------------------------------

async function replicaBench(options: ScaleBenchOptions, schema: string): Promise<void> {
  const open = () => createPostgresStore({ connectionString: options.databaseUrl, schema, logger: silentLogger, ...unbounded });
  const a = await open();
  const b = await open();
  const planner = createExecutionPlanner(b, { maxPlanBytes: Infinity });
  try {
    const writer = a.forInstance(sampleInstance);
    await planner.plan(sampleInstance);
    const seen = async (check: (plan: ExecutionPlan) => boolean, what: string): Promise<number> => {
      const t0 = performance.now();
      for (;;) {
        if (check(await planner.plan(sampleInstance))) return performance.now() - t0;
        if (performance.now() - t0 > 60_000) throw new Error(`replica bench: timed out waiting for ${what}`);
        await sleep(1);
      }
    };
    const n = Math.max(5, options.rounds * 2);
    const change = async (i: number) => {
      const t = await writer.createTarget({ name: `replica-${process.pid}-${i}`, type: "webhook", endpoint: "http://127.0.0.1:9/", timeoutMs: 1000 });
      // An execution that another includes: both are resolved again.
      const method = `/bench.v1.Service${(i * 4) % 100}/Method${i * 4}`;
      await writer.setExecution({ type: "request", method }, [{ target: t.id }]);
      return seen((p) => p.forMethod(method).request?.targets[0]?.id === t.id, "the change");
    };
    // The first change after a full compilation also builds the plan's reverse indexes.
    const first = await change(0);
    const incremental: number[] = [];
    for (let i = 1; i <= n; i++) incremental.push(await change(i));
    // Changes announced without IDs (as a replica without incremental updates treats every
    // change): the replica reads and compiles the whole instance.
    const fullRecompile: number[] = [];
    for (let i = 0; i < n; i++) {
      const before = planner.stats().compiles;
      await a.pool.query("SELECT pg_notify($1, $2)", [a.channel, JSON.stringify({ source: "bench", instanceId: sampleInstance })]);
      fullRecompile.push(await seen(() => planner.stats().compiles > before, "the full recompile"));
    }
    options.table(
      `A replica sees another's change (ms from the write's reply to the replica's updated plan, at ${options.size} targets and executions)`,
      ["notification", "changes", "p50", "max", "goal"],
      [
        ["with IDs, the first after a full compilation (also builds the reverse indexes)", 1, fmt(first, 1), fmt(first, 1), "< 1000"],
        ["with IDs: load and resolve only what changed", n, fmt(median(incremental), 1), fmt(Math.max(...incremental), 1), "< 1000"],
        ["without IDs: read and compile the whole instance", n, fmt(median(fullRecompile), 1), fmt(Math.max(...fullRecompile), 1), "-"],
      ],
    );
  } finally {
    planner.close();
    await a.close();
    await b.close();
  }
}

// --- instances ---------------------------------------------------------------------------------

async function instancesBench(options: ScaleBenchOptions, schema: string): Promise<void> {
  const store: PostgresStore = await createPostgresStore({ connectionString: options.databaseUrl, schema, logger: silentLogger, ...unbounded });
  const count = options.instances;
  const names = Array.from({ length: count }, (_, k) => `inst-${k}`);
  // A pseudo-random order of instances for the lookups (the same in every run).
  let seed = 12345;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const sequence = (n: number) => Array.from({ length: 1 << 16 }, () => names[Math.floor(random() * n)]!);
  try {
    // First use: compile every instance's plan, timing each.
    const base = heapAfterGc();
    const rssBase = rssOf(process.pid);
    const planner = createExecutionPlanner(store, { maxPlanBytes: Infinity });
    const firstUse: number[] = [];
    const t0 = performance.now();
    for (const name of names) {
      const s = performance.now();
      await planner.plan(name);
      firstUse.push(performance.now() - s);
    }
    const loadAll = performance.now() - t0;
    const heap = heapAfterGc() - base;
    const rss = rssOf(process.pid) - rssBase;
    const estimated = planner.stats().estimatedBytes;

    // Per-request resolution over 1, 1 000 and all instances (plans cached): what the interceptor
    // does for each request, planner.plan(instance) and plan.forMethod(method).
    const method = "/bench.v1.Service3/Method3"; // a response execution in every instance
    const none = "/zitadel.user.v2.UserService/GetUserByID";
    const widths = [1, 1_000, count].filter((w, i, all) => w <= count && all.indexOf(w) === i);
    const resolution: (string | number)[][] = [];
    const lookups = 2_000_000;
    for (const width of widths) {
      const seq = sequence(width);
      let hits = 0;
      // CPU time per lookup: on a shared machine, wall time also counts the time other processes run.
      const run = (m: string) => {
        const c = process.cpuUsage();
        for (let i = 0; i < lookups; i++) {
          const plan = planner.plan(seq[i & 0xffff]!) as ExecutionPlan;
          if (plan.forMethod(m).response !== undefined) hits++;
        }
        const used = process.cpuUsage(c);
        return ((used.user + used.system) * 1e3) / lookups;
      };
      run(method);
      const match = median([run(method), run(method), run(method)]);
      const noMatch = median([run(none), run(none), run(none)]);
      const interceptorUs = await interceptorCost(planner, seq);
      resolution.push([width, fmt(match, 1), fmt(noMatch, 1), fmt(interceptorUs, 2), hits > 0 ? "yes" : "no"]);
    }

    // A change in one instance: only that instance's plan is updated; every other plan stays the same object.
    const plans = new Map(names.map((n) => [n, planner.plan(n) as ExecutionPlan]));
    // The change is written through another store object (another replica): the planner hears of
    // it through NOTIFY.
    const changed = names[Math.floor(count / 2)]!;
    const writer = await createPostgresStore({ connectionString: options.databaseUrl, schema, logger: silentLogger, ...unbounded });
    const view = writer.forInstance(changed);
    const target = await view.createTarget({ name: "changed", type: "webhook", endpoint: "http://127.0.0.1:9/", timeoutMs: 1000 });
    await view.setExecution({ type: "request", method: "/bench.v1.Service1/Method0" }, [{ target: target.id }]);
    const c0 = performance.now();
    for (;;) {
      const updated = await planner.plan(changed);
      if (updated.forMethod("/bench.v1.Service1/Method0").request?.targets[0]?.id === target.id) break;
      if (performance.now() - c0 > 60_000) throw new Error("change not seen");
      await sleep(1);
    }
    const updateMs = performance.now() - c0;
    await writer.close();
    let untouched = 0;
    for (const name of names) if (name !== changed && planner.plan(name) === plans.get(name)) untouched++;
    const statsAfter = planner.stats();
    plans.clear();
    planner.close();

    options.table(`${count} instances x 100 executions (10 targets each), PostgreSQL, one planner`, ["measure", "value"], [
      ["first use: compile one instance's plan from PostgreSQL, p50 / p99 (ms)", `${fmt(median(firstUse), 2)} / ${fmt(percentile(firstUse, 99), 2)}`],
      [`first use of all ${count}, one after the other (s)`, fmt(loadAll / 1000, 1)],
      ["heap held by the plans (after GC, MiB)", mib(heap)],
      ["planner's estimate (MiB)", mib(estimated)],
      ["resident memory added (MiB)", mib(rss)],
      ["heap per plan (KiB)", fmt(heap / count / 1024, 1)],
      ["a change in one instance, written by another replica: until the plan has it (ms)", fmt(updateMs, 2)],
      [`plans of the other ${count - 1} instances still the same objects`, `${untouched} of ${count - 1}`],
      ["planner after the change: compiles / updates", `${statsAfter.compiles} / ${statsAfter.updates}`],
    ]);
    options.table(
      "Per-request resolution with every plan cached, instances in pseudo-random order (CPU time: planner.plan + forMethod ns/op, median of 3 x 2 000 000; the actions interceptor with no matching execution µs/call, median of 5 x 100 000)",
      ["instances in use", "match ns/op", "no match ns/op", "interceptor µs/call", "matches seen"],
      resolution,
    );

    // Eviction: a bound of a tenth of the instances; 80 % of the uses go to a twentieth of them.
    const bound = Math.max(1, Math.floor(count / 10));
    const hot = Math.max(1, Math.floor(count / 20));
    const bounded = createExecutionPlanner(store, { maxPlans: bound });
    const heapBefore = heapAfterGc();
    const latencies: number[] = [];
    const seq = Array.from({ length: 1 << 16 }, () => names[Math.floor(random() * (random() < 0.8 ? hot : count))]!);
    const uses = Math.min(10_000, count * 2);
    let misses = 0;
    const e0 = performance.now();
    for (let i = 0; i < uses; i++) {
      const s = performance.now();
      const p = bounded.plan(seq[i & 0xffff]!);
      if (p instanceof Promise) {
        misses++;
        await p;
      }
      latencies.push(performance.now() - s);
    }
    const elapsed = performance.now() - e0;
    const heapBounded = heapAfterGc() - heapBefore;
    const stats = bounded.stats();
    bounded.close();
    options.table(`Eviction: maxPlans ${bound} of ${count} instances, ${uses} uses, 80 % of them on ${hot} instances`, ["measure", "value"], [
      ["hit rate", `${fmt((1 - misses / uses) * 100, 1)} %`],
      ["plan() p50 / p99 (ms; a miss compiles from PostgreSQL)", `${fmt(median(latencies), 3)} / ${fmt(percentile(latencies, 99), 2)}`],
      ["uses per second", fmt(uses / (elapsed / 1000), 0)],
      ["plans held at the end / evictions", `${stats.plans} / ${stats.evictions}`],
      ["heap held (after GC, MiB)", mib(heapBounded)],
    ]);
  } finally {
    await store.close();
  }
}

/**
 * interceptorCost measures the actions interceptor per call in process, with no matching execution,
 * the instance taken from a header (resolveInstance), over the instances of `seq`: µs per call.
 */
async function interceptorCost(planner: ExecutionPlanner, seq: readonly string[]): Promise<number> {
  const stub: TargetDispatcher = { call: async () => ({ status: 200, json: undefined }), fire() {}, idle: async () => {}, close: async () => {} };
  const method = UserService.method.getUserByID;
  const response = create(GetUserByIDResponseSchema, {});
  const reply = { stream: false, service: UserService, method, header: new Headers(), trailer: new Headers(), message: response };
  const next = ((req: UnaryRequest) => Promise.resolve({ ...reply, contextValues: req.contextValues })) as unknown as Parameters<Interceptor>[0];
  const intercepted = createActionsInterceptor({
    planner,
    dispatcher: stub,
    logger: silentLogger,
    resolveInstance: (req) => req.header.get("x-instance") ?? "",
  })(next);
  const signal = new AbortController().signal;
  const message = create(GetUserByIDRequestSchema, { userId: "1" });
  const requests = seq.slice(0, 4096).map(
    (instance) =>
      ({
        stream: false, service: UserService, method, requestMethod: "POST", url: "http://127.0.0.1/x", signal,
        header: new Headers({ "x-instance": instance }), contextValues: createContextValues(), message,
      }) as unknown as UnaryRequest,
  );
  const batch = 100_000;
  const samples: number[] = [];
  for (let round = 0; round < 6; round++) {
    const c = process.cpuUsage();
    for (let i = 0; i < batch; i++) await intercepted(requests[i & 4095]!);
    const used = process.cpuUsage(c);
    if (round >= 1) samples.push((used.user + used.system) / batch);
  }
  return median(samples);
}
