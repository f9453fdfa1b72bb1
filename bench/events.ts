// The events section of `npm run bench`: event delivery through PostgreSQL, this project's queue
// against graphile-worker (the devDependency's exact version) on the same database, same work.
//
// End to end: --connections producers (default 16) each loop over one transaction that inserts a
// row into bench_users and enqueues its event (this queue: publisher.jobsFor + enqueueWith on the
// transaction's client; graphile-worker: graphile_worker.add_job with queue_name = the aggregate,
// so that jobs of one aggregate run one at a time), for --duration seconds, while a worker in a
// child process delivers (this queue: createEventWorker with the real target dispatcher; graphile:
// run() with a task that POSTs the payload with undici), both at concurrency 16, to the same local
// hook in a third process, which counts the deliveries. events/s = rows created / (time of the
// last delivery - start). Rounds interleave the two systems, order flipped every round.
//
// Write cost: the same transaction with and without the enqueue (and with graphile's add_job),
// sequentially (p50 latency) and at c=16 (throughput), into a schema no worker reads (so the queue
// grows; it is emptied between rounds), plus the enqueue into the live schema while the worker
// delivers.
//
// Memory: resident memory per queued event of the memory queue (a child process with --expose-gc),
// and disk per queued event of both PostgreSQL queues.
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import pg from "pg";
import { runMigrations, Logger as GraphileLogger } from "graphile-worker";
import { type ActionEvent, encodeEventPayload } from "../src/events/action-event.js";
import { startBenchChild } from "./bench-child.js";
import { createBenchDatabase } from "./bench-database.js";
import { fmt, median, summary } from "./bench-stats.js";
import { benchUserEvent } from "./bench-event.js";
import { createEventPublisher } from "../src/events/event-publisher.js";
import { silentLogger } from "../src/logger.js";
import { createExecutionPlanner } from "../src/plan/execution-planner.js";
import { createPostgresEventQueue, type PostgresEventQueue } from "../src/postgres/event-queue.js";
import { createPostgresStore } from "../src/postgres/store.js";

/** EventsBenchOptions configures eventsBench. */
export interface EventsBenchOptions {
  readonly databaseUrl: string;
  readonly durationMs: number;
  readonly rounds: number;
  readonly connections: number;
  readonly table: (title: string, head: string[], rows: (string | number)[][]) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  await Promise.race([exited, sleep(10_000)]);
  if (child.exitCode === null) child.kill("SIGKILL");
}


let aggregate = 0;
const userEvent = (id: string): ActionEvent => benchUserEvent(id, ++aggregate);

/** A write inside a transaction the loop opened; it resolves "committed" when it committed the transaction itself. */
type Write = (client: pg.PoolClient) => Promise<void | "committed">;

/** Runs `conns` closed loops of one transaction (BEGIN, `write`, COMMIT) for `ms`; returns count, tx/s and p50 latency (ms). */
async function loop(pool: pg.Pool, conns: number, ms: number, write: Write): Promise<{ count: number; tps: number; p50: number }> {
  const latencies: number[] = [];
  const started = performance.now();
  const until = started + ms;
  await Promise.all(
    Array.from({ length: conns }, async () => {
      const client = await pool.connect();
      try {
        while (performance.now() < until) {
          const t0 = performance.now();
          await client.query("BEGIN");
          try {
            if ((await write(client)) !== "committed") await client.query("COMMIT");
          } catch (error) {
            await client.query("ROLLBACK");
            throw error;
          }
          latencies.push(performance.now() - t0);
        }
      } finally {
        client.release();
      }
    }),
  );
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return { count: latencies.length, tps: (latencies.length * 1000) / elapsed, p50: latencies[Math.floor(latencies.length / 2)] ?? NaN };
}

export async function eventsBench(options: EventsBenchOptions): Promise<void> {
  const { durationMs, rounds, connections, table } = options;
  const db = await createBenchDatabase(options.databaseUrl);
  const children: ChildProcess[] = [];
  const closers: (() => Promise<void>)[] = [];
  try {
    const hook = await startBenchChild("target-server.ts");
    children.push(hook.child);
    const hookUrl = `http://127.0.0.1:${hook.line}`;
    const count = async (): Promise<{ count: number; lastAt: number }> => (await fetch(`${hookUrl}/events/count`)).json() as never;

    const pool = new pg.Pool({ connectionString: db.url, max: connections + 4 });
    closers.push(() => pool.end());
    await pool.query(`CREATE TABLE bench_users (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, given_name text NOT NULL, family_name text NOT NULL,
      email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
    const store = await createPostgresStore({ connectionString: db.url, logger: silentLogger });
    closers.push(() => store.close());
    const benchStore = store.forInstance("bench-instance"); // the instance of the bench's events
    const target = await benchStore.createTarget({ name: "events", type: "webhook", endpoint: `${hookUrl}/events`, timeoutMs: 5000 });
    await benchStore.setExecution({ type: "event", event: "user.human.added" }, [{ target: target.id }]);
    const planner = createExecutionPlanner(store);
    closers.push(async () => planner.close());
    const queue = await createPostgresEventQueue({ connectionString: db.url, logger: silentLogger });
    closers.push(() => queue.close());
    const publisher = createEventPublisher({ planner, queue });
    const writes = await createPostgresEventQueue({ connectionString: db.url, schema: "bench_writes", logger: silentLogger });
    closers.push(() => writes.close());
    const graphileLogger = new GraphileLogger(() => () => {});
    await runMigrations({ connectionString: db.url, logger: graphileLogger });
    await runMigrations({ connectionString: db.url, schema: "graphile_writes", logger: graphileLogger });

    const insertUser = async (client: pg.PoolClient): Promise<ActionEvent> => {
      const { rows } = await client.query<{ id: string }>(
        "INSERT INTO bench_users (given_name, family_name, email) VALUES ($1, $2, $3) RETURNING id",
        ["Bench", "User", "bench@example.com"],
      );
      return userEvent(String(rows[0]!.id));
    };
    const enqueueInto = (q: PostgresEventQueue): Write => async (client) => {
      const event = await insertUser(client);
      const jobs = await publisher.jobsFor(event);
      if (jobs.length !== 1) throw new Error(`the bench's event execution made ${jobs.length} deliveries, not 1`);
      await q.enqueueWith(client, jobs);
    };
    // As createPostgresOutbox writes: the deliveries and the COMMIT in one round trip.
    const enqueueAndCommitInto = (q: PostgresEventQueue): Write => async (client) => {
      const event = await insertUser(client);
      const jobs = await publisher.jobsFor(event);
      if (jobs.length !== 1) throw new Error(`the bench's event execution made ${jobs.length} deliveries, not 1`);
      await q.enqueueAndCommit(client, jobs);
      return "committed";
    };
    const addJobInto = (schema: string): Write => async (client) => {
      const event = await insertUser(client);
      await client.query(`SELECT ${pg.escapeIdentifier(schema)}.add_job('deliver', $1::json, queue_name => $2)`, [
        encodeEventPayload(event),
        `user/${event.aggregateID}`,
      ]);
    };
    const systems = {
      queue: enqueueInto(queue),
      graphile: addJobInto("graphile_worker"),
    } as const;

    // EVENTS_CPU_PROF=<dir> writes a CPU profile of each worker process there (node --cpu-prof).
    const profile = process.env.EVENTS_CPU_PROF ? ["--cpu-prof", `--cpu-prof-dir=${process.env.EVENTS_CPU_PROF}`] : [];
    const queueWorker = await startBenchChild("events-worker.ts", ["queue", db.url], { nodeFlags: profile });
    const graphileWorker = await startBenchChild("events-worker.ts", ["graphile", db.url, `${hookUrl}/events`], { nodeFlags: profile });
    children.push(queueWorker.child, graphileWorker.child);

    /** One end-to-end run: produce for `ms`, then wait for every delivery. */
    const endToEnd = async (write: Write, ms: number) => {
      const before = (await count()).count;
      const started = Date.now();
      const produced = await loop(pool, connections, ms, write);
      const producedAt = Date.now();
      const deadline = producedAt + 180_000;
      let now = await count();
      while (now.count < before + produced.count) {
        if (Date.now() > deadline) {
          // Say what the database was doing, to tell a stalled worker from a slow one.
          const activity = await pool.query(
            `SELECT pid, application_name, state, wait_event_type, wait_event, now() - xact_start AS xact, left(query, 160) AS query
             FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`,
          );
          const tables = await pool.query(
            `SELECT (SELECT count(*) FROM connect_actions.event_inbox) AS inbox, (SELECT count(*) FROM connect_actions.event_jobs) AS jobs,
               (SELECT count(lease) FROM connect_actions.event_jobs) AS leased, (SELECT count(*) FROM connect_actions.event_lanes) AS lanes`,
          );
          console.error(JSON.stringify({ activity: activity.rows, tables: tables.rows }, null, 1));
          throw new Error(`only ${now.count - before} of ${produced.count} events delivered after 180 s`);
        }
        await sleep(20);
        now = await count();
      }
      const tookMs = now.lastAt - started;
      return {
        creates: produced.tps,
        events: (produced.count * 1000) / tookMs,
        lagMs: now.lastAt - producedAt,
      };
    };

    // Warm-up, unmeasured.
    for (const write of Object.values(systems)) await endToEnd(write, Math.min(2000, durationMs));
    const e2e = { queue: [] as Awaited<ReturnType<typeof endToEnd>>[], graphile: [] as Awaited<ReturnType<typeof endToEnd>>[] };
    const names = ["queue", "graphile"] as const;
    for (let round = 1; round <= rounds; round++) {
      for (const name of round % 2 === 1 ? names : [...names].reverse()) {
        e2e[name].push(await endToEnd(systems[name], durationMs));
        await pool.query("VACUUM ANALYZE");
        process.stderr.write(`events round ${round}/${rounds}: ${name} done\n`);
      }
    }
    table(
      `Events end to end (PostgreSQL, ${connections} producers, worker concurrency 16; medians of ${rounds} round(s), ${durationMs / 1000} s each)`,
      ["system", "creates/s", "events/s", "drain after the last create (ms)"],
      names.map((n) => [
        n === "queue" ? "connect-actions queue" : "graphile-worker 0.18.0",
        fmt(median(e2e[n].map((s) => s.creates)), 0),
        fmt(median(e2e[n].map((s) => s.events)), 0),
        fmt(median(e2e[n].map((s) => s.lagMs)), 0),
      ]),
    );

    // Write cost.
    const truncateWrites = async () => {
      await pool.query("TRUNCATE bench_writes.event_inbox, bench_writes.event_jobs, bench_writes.event_lanes");
      await pool.query("DELETE FROM graphile_writes._private_jobs; DELETE FROM graphile_writes._private_job_queues");
    };
    const writeConfigs: [string, Write][] = [
      ["insert alone", async (client) => void (await insertUser(client))],
      ["insert + enqueueAndCommit, as the outbox (no worker)", enqueueAndCommitInto(writes)],
      ["insert + enqueueWith (no worker)", enqueueInto(writes)],
      ["insert + graphile add_job (no worker)", addJobInto("graphile_writes")],
      ["insert + enqueueWith (worker delivering)", enqueueInto(queue)],
    ];
    const writeResults = new Map<string, { seq: Awaited<ReturnType<typeof loop>>[]; par: Awaited<ReturnType<typeof loop>>[] }>(
      writeConfigs.map(([name]) => [name, { seq: [], par: [] }]),
    );
    const writeMs = Math.max(1000, durationMs / 2);
    for (let round = 1; round <= rounds; round++) {
      for (const [name, write] of round % 2 === 1 ? writeConfigs : [...writeConfigs].reverse()) {
        const r = writeResults.get(name)!;
        r.seq.push(await loop(pool, 1, writeMs, write));
        r.par.push(await loop(pool, connections, writeMs, write));
        await truncateWrites();
        if (name.includes("worker delivering")) {
          // Let the worker catch up, so that it does not weigh on the next configuration.
          while ((await queue.pending()) > 0) await sleep(50);
        }
      }
      process.stderr.write(`write cost round ${round}/${rounds} done\n`);
    }
    const at = (name: string) => writeResults.get(name)!;
    table(
      `Write cost (one transaction each; medians of ${rounds} round(s), ${writeMs / 1000} s each)`,
      ["transaction", "seq p50 ms", "seq tx/s", `c=${connections} tx/s`, `c=${connections} p50 ms`],
      writeConfigs.map(([name]) => [
        name,
        fmt(median(at(name).seq.map((s) => s.p50)), 3),
        fmt(median(at(name).seq.map((s) => s.tps)), 0),
        fmt(median(at(name).par.map((s) => s.tps)), 0),
        fmt(median(at(name).par.map((s) => s.p50)), 3),
      ]),
    );
    const perRound = (f: (r: number) => number) => Array.from({ length: rounds }, (_, r) => f(r));
    const seqCost = (name: string) => perRound((r) => at(name).seq[r]!.p50 / at("insert alone").seq[r]!.p50);
    const parCost = (name: string) => perRound((r) => at("insert alone").par[r]!.tps / at(name).par[r]!.tps);

    // Memory and disk per queued event.
    const memory = await startBenchChild("events-memory.ts", [], { nodeFlags: ["--expose-gc"] });
    const mem = JSON.parse(memory.line) as { events: number; rssBytes: number; heapBytes: number; bodyBytes: number };
    await stopChild(memory.child);
    const diskEvents = 20_000;
    const diskClient = await pool.connect();
    let queueDisk: number;
    let queueLaneDisk: number;
    let graphileDisk: number;
    try {
      await truncateWrites();
      await pool.query(
        "VACUUM FULL bench_writes.event_inbox, bench_writes.event_jobs, bench_writes.event_lanes, graphile_writes._private_jobs, graphile_writes._private_job_queues",
      );
      const size = async (tables: string[]) =>
        Number((await pool.query<{ n: string }>(`SELECT ${tables.map((t) => `pg_total_relation_size('${t}')`).join(" + ")} AS n`)).rows[0]!.n);
      const queueTables = ["bench_writes.event_inbox"];
      const laneTables = ["bench_writes.event_jobs", "bench_writes.event_lanes"];
      const l0 = await size(laneTables);
      const graphileTables = ["graphile_writes._private_jobs", "graphile_writes._private_job_queues"];
      const q0 = await size(queueTables);
      const g0 = await size(graphileTables);
      for (let i = 0; i < diskEvents; i += 500) {
        await diskClient.query("BEGIN");
        for (let k = 0; k < 500; k++) await enqueueInto(writes)(diskClient);
        await diskClient.query("COMMIT");
        await diskClient.query("BEGIN");
        for (let k = 0; k < 500; k++) await addJobInto("graphile_writes")(diskClient);
        await diskClient.query("COMMIT");
      }
      await pool.query("CHECKPOINT");
      queueDisk = ((await size(queueTables)) - q0) / diskEvents;
      graphileDisk = ((await size(graphileTables)) - g0) / diskEvents;
      // Claims take the inbox in (2 000 per claim): the same jobs in event_jobs and their lanes.
      while (Number((await pool.query<{ n: string }>("SELECT count(*) AS n FROM bench_writes.event_inbox")).rows[0]!.n) > 0) {
        await writes.claim(1, 60_000);
      }
      await pool.query("CHECKPOINT");
      queueLaneDisk = ((await size(laneTables)) - l0) / diskEvents;
      await truncateWrites();
    } finally {
      diskClient.release();
    }

    table(`Events: ratios (median [min .. max] of the ${rounds} rounds' own ratios)`, ["measure", "value", "goal"], [
      ["events/s end to end, connect-actions queue / graphile-worker", summary(perRound((r) => e2e.queue[r]!.events / e2e.graphile[r]!.events)), ">= 2"],
      ["creates/s end to end, connect-actions queue / graphile-worker", summary(perRound((r) => e2e.queue[r]!.creates / e2e.graphile[r]!.creates)), "-"],
      ["write with an event (outbox), sequential p50 / insert alone", summary(seqCost("insert + enqueueAndCommit, as the outbox (no worker)")), "<= 1.3"],
      [`write with an event (outbox), c=${connections} (insert alone tx/s / with enqueue tx/s)`, summary(parCost("insert + enqueueAndCommit, as the outbox (no worker)")), "<= 1.3"],
      ["write with an event (enqueueWith, then COMMIT), sequential p50 / insert alone", summary(seqCost("insert + enqueueWith (no worker)")), "-"],
      [`write with an event (enqueueWith, then COMMIT), c=${connections}`, summary(parCost("insert + enqueueWith (no worker)")), "-"],
      ["write with graphile add_job, sequential p50 / insert alone", summary(seqCost("insert + graphile add_job (no worker)")), "-"],
      [`write with graphile add_job, c=${connections} (insert alone tx/s / with add_job tx/s)`, summary(parCost("insert + graphile add_job (no worker)")), "-"],
      [`write with an event while the worker delivers, c=${connections} (insert alone tx/s / with enqueue tx/s)`, summary(parCost("insert + enqueueWith (worker delivering)")), "-"],
    ]);
    table("Memory per queued event", ["queue", "bytes per event", "how"], [
      ["memory queue, resident (RSS)", fmt(mem.rssBytes, 0), `${mem.events} events of ${mem.bodyBytes} B payload, after GC`],
      ["memory queue, JS heap", fmt(mem.heapBytes, 0), "same"],
      ["PostgreSQL queue, disk, enqueued (event_inbox, with its index)", fmt(queueDisk, 0), `${diskEvents} events`],
      ["PostgreSQL queue, disk, taken in (event_jobs + event_lanes, with indexes)", fmt(queueLaneDisk, 0), `${diskEvents} events, one lane each`],
      ["graphile-worker, disk (_private_jobs + _private_job_queues)", fmt(graphileDisk, 0), `${diskEvents} jobs, one queue each`],
    ]);
  } finally {
    for (const child of children.reverse()) await stopChild(child);
    for (const close of closers.reverse()) await close().catch(() => {});
    await db.drop();
  }
}
