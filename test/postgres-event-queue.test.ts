import { Code } from "@connectrpc/connect";
import pg from "pg";
import { describe, expect, it } from "vitest";
import type { ActionEvent } from "../src/events/action-event.js";
import { createEventPublisher } from "../src/events/event-publisher.js";
import type { QueuedJob } from "../src/events/event-queue.js";
import { createEventWorker, type EventWorker } from "../src/events/event-worker.js";
import { createExecutionPlanner } from "../src/plan/execution-planner.js";
import { silentLogger } from "../src/logger.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { createPostgresEventQueue, type PostgresEventQueue, type PostgresEventQueueOptions } from "../src/postgres/event-queue.js";
import { createTargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { describeEventQueueContract } from "../src/testing/event-queue-contract.js";
import { migrate, postgresMigrations } from "../src/postgres/migrations.js";
import { job } from "./helpers/event-jobs.js";
import { closedAfterEach, newSchemaName, openInFreshSchema, useTestDatabase } from "./helpers/postgres.js";
import { startTargetServer } from "./helpers/target-server.js";
import { codeOf, sleep, waitFor } from "./helpers/wait.js";

const db = useTestDatabase();
const newSchema = () => newSchemaName("q");

const create = (options: PostgresEventQueueOptions = {}) =>
  createPostgresEventQueue({ connectionString: db.url, logger: silentLogger, ...options });

describeEventQueueContract("postgres", async () => {
  const { opened: queue, cleanup } = await openInFreshSchema(db, "q", (schema) => create({ schema }));
  return { queue, cleanup };
});

describe("postgres event queue", () => {
  const open = closedAfterEach(create);

  it("never hands out a lane twice at once across two instances, and settles each lane in order", async () => {
    const schema = newSchema();
    const [a, b] = [await open({ schema }), await open({ schema })];
    const lanes = 40;
    const perLane = 25;
    const laneOf = (j: { targetId: string; orderingKey: string }) => `${j.targetId}|${j.orderingKey}`;
    // Per lane: bodies in enqueue order, how many were completed, the job held now.
    const expected = new Map<string, string[]>();
    const completed = new Map<string, number>();
    const held = new Map<string, string>();
    const claimsOf = new Map<string, number>();
    const violations: string[] = [];
    let done = 0;
    let retries = 0;

    // Each lane is fed by one instance, a few jobs per enqueue, while the
    // claimers of both instances drain the lanes: lanes keep being emptied
    // (deleted) and refilled (created) under the claimers' feet.
    const feed = async (lane: number) => {
      const queue = lane % 2 === 0 ? a : b;
      const [target, key] = [`t${lane % 3}`, `agg-${lane}`];
      const bodies: string[] = [];
      expected.set(`${target}|${key}`, bodies);
      for (let sent = 0; sent < perLane; ) {
        const batch = Array.from({ length: Math.min(perLane - sent, 1 + Math.floor(Math.random() * 3)) }, () => job(target, key));
        bodies.push(...batch.map((j) => j.body));
        await queue.enqueue(batch);
        sent += batch.length;
        await sleep(Math.random() * 20);
      }
    };
    const deadline = Date.now() + 40_000;
    const claimer = async (queue: PostgresEventQueue) => {
      while (done < lanes * perLane && Date.now() < deadline) {
        const jobs = await queue.claim(1 + Math.floor(Math.random() * 5), 60_000);
        if (jobs.length === 0) {
          await sleep(2);
          continue;
        }
        await Promise.all(
          jobs.map(async (j: QueuedJob) => {
            const lane = laneOf(j);
            if (held.has(lane)) violations.push(`lane ${lane} claimed (${j.id}) while ${held.get(lane)} was held`);
            held.set(lane, j.id);
            const claims = (claimsOf.get(j.id) ?? 0) + 1;
            claimsOf.set(j.id, claims);
            if (j.attempt !== claims) violations.push(`job ${j.id}: attempt ${j.attempt}, claim ${claims}`);
            const position = completed.get(lane) ?? 0;
            if (expected.get(lane)?.[position] !== j.body) violations.push(`lane ${lane}: got ${j.body} at position ${position}`);
            await sleep(Math.random() * 3);
            // Released before settling: the settle's commit is what lets
            // another claim take the lane, so this never reports falsely.
            held.delete(lane);
            if (Math.random() < 0.1) {
              retries++;
              if (!(await queue.retry(j, new Date(Date.now() - 1000), "status 503"))) violations.push(`retry of ${j.id} refused`);
            } else {
              completed.set(lane, position + 1);
              done++;
              if (!(await queue.complete(j))) violations.push(`complete of ${j.id} refused`);
            }
          }),
        );
      }
    };
    await Promise.all([
      ...Array.from({ length: lanes }, (_, i) => feed(i)),
      ...Array.from({ length: 4 }, () => claimer(a)),
      ...Array.from({ length: 4 }, () => claimer(b)),
    ]);
    expect(violations).toEqual([]);
    expect(done).toBe(lanes * perLane);
    for (const [lane, bodies] of expected) expect(completed.get(lane), lane).toBe(bodies.length);
    expect([...claimsOf.values()].reduce((x, y) => x + y, 0)).toBe(lanes * perLane + retries);
    expect(await a.pending()).toBe(0);
    const [left] = await db.query<{ lanes: number }>(`SELECT count(*)::int AS lanes FROM ${pg.escapeIdentifier(schema)}.event_lanes`);
    expect(left!.lanes).toBe(0);
  }, 60_000);

  it("lets another instance take over a job whose lease ran out; the first claim can no longer settle it", async () => {
    const schema = newSchema();
    const [a, b] = [await open({ schema }), await open({ schema })];
    await a.enqueue([job("t", "k", { timeoutMs: 100 }), job("t", "k")]);
    const [first] = await a.claim(10, 100);
    expect(await b.claim(10, 100)).toEqual([]);
    await sleep(350);
    const [second] = await b.claim(10, 100);
    expect(second).toMatchObject({ id: first!.id, attempt: 2 });
    expect(await a.complete(first!)).toBe(false);
    expect(await a.giveUp(first!, "late")).toBe(false);
    expect(await b.complete(second!)).toBe(true);
    expect((await a.claim(10, 100)).map((j) => j.attempt)).toEqual([1]);
    expect(await b.listDead()).toEqual([]);
  });

  it("enqueues with the caller's transaction: nothing on rollback, everything (and a wake-up) on commit", async () => {
    const schema = newSchema();
    const [a, b] = [await open({ schema }), await open({ schema })];
    let woken = 0;
    b.watch(() => woken++);
    // B waits for jobs: it holds the wake-up lock, so enqueues send a NOTIFY.
    await waitFor(
      async () =>
        (
          await db.query(
            `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = ${0x0ca_0010} AND mode = 'ExclusiveLock' AND granted
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          )
        ).length === 1,
      5000,
      "B to hold the wake-up lock",
    );
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query("BEGIN");
      await a.enqueueWith(client, [job("t", "k"), job("t", "k2")]);
      expect(await a.pending()).toBe(0); // not visible before commit
      await client.query("ROLLBACK");
      expect(await a.pending()).toBe(0);
      await sleep(200);
      expect(woken).toBe(0);

      const kept = [job("t", "k"), job("t", "k")];
      await client.query("BEGIN");
      await client.query("CREATE TEMP TABLE app_state (v int)");
      await a.enqueueWith(client, kept);
      await client.query("COMMIT");
      await waitFor(() => woken > 0, 2000, "the NOTIFY of the commit");
      expect((await b.claim(10, 1000)).map((j) => j.body)).toEqual([kept[0]!.body]);

      // Outside a transaction the statement commits on its own.
      await a.enqueueWith(client, [job("t", "solo")]);
      expect(await b.pending()).toBe(3);

      // A job PostgreSQL cannot store is refused before anything is sent.
      await client.query("BEGIN");
      expect(await codeOf(a.enqueueWith(client, [job("t", "k", { body: "a\0b" })]))).toBe(Code.InvalidArgument);
      await client.query("ROLLBACK");
    } finally {
      await client.end();
    }
  });

  it("enqueues and commits in one round trip, every character of the jobs kept; a failed insert commits nothing", async () => {
    const schema = newSchema();
    const queue = await open({ schema });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query(`CREATE TABLE ${pg.escapeIdentifier(schema)}.writes (n integer)`);
      const odd = "quote ' backslash \\ E'\\x41' $1 ; COMMIT; -- \u{1F600} \u00e9\nnewline";
      const jobs = [
        job("t", "k", { body: JSON.stringify({ odd }), instanceId: "inst ' 1" }),
        job("t", "k", { instanceId: "inst ' 1", eventType: odd, executionId: odd, createdAt: new Date("2026-01-02T03:04:05.678Z"), timeoutMs: 1234 }),
      ];
      let roundTrips = 0;
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        roundTrips++;
        return query(...args);
      };
      await client.query("BEGIN");
      await client.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.writes VALUES (1)`);
      roundTrips = 0;
      await queue.enqueueAndCommit(client, jobs);
      expect(roundTrips).toBe(1);
      // Committed: the write and the jobs are visible to others, exactly as given, in order.
      expect((await db.query(`SELECT n FROM ${pg.escapeIdentifier(schema)}.writes`)).map((r) => r.n)).toEqual([1]);
      const claimed = await queue.claim(10, 1000);
      expect(claimed.map((j) => [j.instanceId, j.body, j.eventType, j.executionId, j.createdAt.toISOString(), j.timeoutMs])).toEqual([
        ["inst ' 1", jobs[0]!.body, jobs[0]!.eventType, jobs[0]!.executionId, jobs[0]!.createdAt.toISOString(), jobs[0]!.timeoutMs],
      ]);
      // The second, behind the first in its lane, arrives with every character too.
      await queue.complete(claimed[0]!);
      const [second] = await queue.claim(10, 1000);
      expect([second!.eventType, second!.executionId, second!.createdAt.toISOString(), second!.timeoutMs]).toEqual([
        odd,
        odd,
        "2026-01-02T03:04:05.678Z",
        1234,
      ]);
      expect(await queue.pending()).toBe(1);
      // A failing insert: nothing of the transaction is committed.
      await client.query("BEGIN");
      await client.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.writes VALUES (2)`);
      expect(await codeOf(queue.enqueueAndCommit(client, [job("t", "k", { body: "a\0b" })]))).toBe(Code.InvalidArgument);
      await client.query("ROLLBACK");
      expect((await db.query(`SELECT n FROM ${pg.escapeIdentifier(schema)}.writes`)).map((r) => r.n)).toEqual([1]);
      // No jobs: only the commit.
      await client.query("BEGIN");
      await client.query(`INSERT INTO ${pg.escapeIdentifier(schema)}.writes VALUES (3)`);
      await queue.enqueueAndCommit(client, []);
      expect((await db.query(`SELECT n FROM ${pg.escapeIdentifier(schema)}.writes ORDER BY n`)).map((r) => r.n)).toEqual([1, 3]);
      expect(await queue.pending()).toBe(1);
    } finally {
      await client.end();
    }
  });

  it("wakes an idle worker on another instance through NOTIFY, without waiting for its poll", async () => {
    const schema = newSchema();
    const [a, b] = [await open({ schema }), await open({ schema })];
    const targets = await startTargetServer();
    const store = createMemoryStore();
    const planner = createExecutionPlanner(store);
    const dispatcher = createTargetDispatcher({ logger: silentLogger });
    let worker: EventWorker | undefined;
    try {
      const t = await store.forInstance("i").createTarget({ name: "wake", type: "webhook", endpoint: targets.endpoint("/wake"), timeoutMs: 2000 });
      await store.forInstance("i").setExecution({ type: "event", all: true }, [{ target: t.id }]);
      worker = createEventWorker({ queue: b, planner, dispatcher, logger: silentLogger, pollIntervalMs: 600_000 });
      worker.start();
      await sleep(300); // the worker has looked at the empty queue and sleeps
      for (let i = 1; i <= 3; i++) {
        const event: ActionEvent = {
          aggregateID: "u1", aggregateType: "user", resourceOwner: "o", instanceID: "i", version: "v2", sequence: i,
          eventType: "user.human.added", createdAt: new Date(), userID: "", payload: {},
        };
        expect(await createEventPublisher({ planner, queue: a }).publish(event)).toBe(1);
        // The worker polls every 600 s: only the NOTIFY can wake it this soon.
        await targets.waitFor("/wake", i, 5000);
        await waitFor(async () => (await a.pending()) === 0, 2000, "the delivery to be completed");
        await sleep(100);
      }
    } finally {
      await worker?.stop();
      await dispatcher.close();
      await targets.close();
      planner.close();
    }
  });

  it("keeps jobs, leases, attempts and dead jobs across closing and reopening", async () => {
    const schema = newSchema();
    const first = await open({ schema });
    const jobs = [job("t", "k", { timeoutMs: 200 }), job("t", "k"), job("t", "other")];
    await first.enqueue(jobs);
    const claimed = await first.claim(10, 0);
    expect(claimed.map((j) => j.body)).toEqual([jobs[0]!.body, jobs[2]!.body]);
    expect(await first.giveUp(claimed[1]!, "status 410")).toBe(true);
    await first.close();
    await expect(first.pending()).rejects.toMatchObject({ code: Code.Unavailable });

    const again = await open({ schema });
    expect(await again.pending()).toBe(2);
    expect(await again.claim(10, 0)).toEqual([]); // the lease of jobs[0] still holds
    await sleep(300);
    const [retaken] = await again.claim(10, 0);
    expect(retaken).toMatchObject({ body: jobs[0]!.body, attempt: 2, createdAt: jobs[0]!.createdAt });
    expect(await again.complete(retaken!)).toBe(true);
    expect((await again.claim(10, 0)).map((j) => j.body)).toEqual([jobs[1]!.body]);
    expect((await again.listDead()).map((d) => [d.body, d.error])).toEqual([[jobs[2]!.body, "status 410"]]);
  });

  it("keeps at most maxDead dead jobs, the latest", async () => {
    const schema = newSchema();
    const queue = await open({ schema, maxDead: 3 });
    await queue.enqueue(Array.from({ length: 7 }, (_, i) => job("t", `k${i}`)));
    for (const j of await queue.claim(10, 1000)) expect(await queue.giveUp(j, `e${j.orderingKey}`)).toBe(true);
    expect((await queue.listDead()).map((d) => d.error)).toEqual(["ek6", "ek5", "ek4"]);
    const none = await open({ schema, maxDead: 0 });
    await none.enqueue([job("t", "x")]);
    const [x] = await none.claim(1, 1000);
    expect(await none.giveUp(x!, "gone")).toBe(true);
    expect(await none.pending()).toBe(0);
    expect((await none.listDead()).map((d) => d.error)).toEqual(["ek6", "ek5", "ek4"]);
  });

  it("restores its LISTEN connection after the backend is killed, tells the watchers, and hears later enqueues", async () => {
    const schema = newSchema();
    const [a, b] = [await open({ schema }), await open({ schema })];
    let woken = 0;
    a.watch(() => woken++);
    const pid = a.listenerPid()!;
    expect(pid).toBeTypeOf("number");
    await db.query("SELECT pg_terminate_backend($1)", [pid]);
    await waitFor(() => a.listenerPid() !== undefined && a.listenerPid() !== pid, 5000, "the LISTEN connection to come back");
    await waitFor(() => woken === 1, 1000, "the watchers to be told once");
    await b.enqueue([job("t", "k")]);
    await waitFor(() => woken === 2, 2000, "the NOTIFY of B's enqueue");
  });

  it("rejects bad jobs and arguments with InvalidArgument, and everything after close with Unavailable", async () => {
    const queue = await open({ schema: newSchema() });
    expect(await codeOf(queue.enqueue([job("t", "k", { timeoutMs: 0 })]))).toBe(Code.InvalidArgument);
    expect(await codeOf(queue.enqueue([job("t", "k", { createdAt: new Date(Number.NaN) })]))).toBe(Code.InvalidArgument);
    expect(await codeOf(queue.enqueue([job("t", "k\0")]))).toBe(Code.InvalidArgument);
    expect(await codeOf(queue.claim(1, -1))).toBe(Code.InvalidArgument);
    expect(await queue.pending()).toBe(0);
    await queue.enqueue([job("t", "k")]);
    const [j] = await queue.claim(1, 1000);
    expect(await codeOf(queue.retry(j!, new Date(Number.NaN), "x"))).toBe(Code.InvalidArgument);
    // A forged claim settles nothing.
    expect(await queue.complete({ ...j!, lease: "forged" })).toBe(false);
    expect(await queue.complete({ ...j!, id: "not a number" })).toBe(false);
    expect(await queue.retry(j!, new Date(), "nul \0 in error")).toBe(true);
    const [again] = await queue.claim(1, 1000);
    expect(again!.lastError).toBe("nul \uFFFD in error");
    await queue.close();
    expect(await codeOf(queue.enqueue([job("t", "k")]))).toBe(Code.Unavailable);
    expect(await codeOf(queue.claim(1, 1000))).toBe(Code.Unavailable);
    expect(await codeOf(queue.complete(again!))).toBe(Code.Unavailable);
  });

  it("rejects bad options with InvalidArgument and an unreachable database with Unavailable", async () => {
    expect(await codeOf(createPostgresEventQueue({ schema: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(createPostgresEventQueue({ connectionString: db.url, schema: "x".repeat(60), logger: silentLogger }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(createPostgresEventQueue({ connectionString: db.url, maxDead: -1 }))).toBe(Code.InvalidArgument);
    expect(
      await codeOf(createPostgresEventQueue({ connectionString: "postgres://postgres@127.0.0.1:1/postgres", logger: silentLogger })),
    ).toBe(Code.Unavailable);
  });

  it("locks no lane for an open enqueue, and answers busy, without waiting, for a lane another transaction holds", async () => {
    const schema = newSchema();
    const queue = await open({ schema });
    await queue.enqueue([job("t", "k"), job("t", "other")]);
    const claimed = await queue.claim(10, 60_000);
    const [head, other] = [claimed.find((j) => j.orderingKey === "k")!, claimed.find((j) => j.orderingKey === "other")!];
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      // An open transaction that enqueues into the lane holds nothing up.
      await client.query("BEGIN");
      const next = job("t", "k");
      await queue.enqueueWith(client, [next]);
      expect(await queue.settle([{ job: head, outcome: "complete" }], { wait: false })).toEqual(["settled"]);
      expect(await queue.claim(10, 60_000)).toEqual([]); // not committed yet
      await client.query("COMMIT");
      const [second] = await queue.claim(10, 60_000);
      expect(second!.body).toBe(next.body);
      // A transaction holding the lane (as a worker taking in jobs does): busy, or wait.
      await client.query("BEGIN");
      await client.query(`SELECT 1 FROM ${pg.escapeIdentifier(schema)}.event_lanes WHERE ordering_key = 'k' FOR UPDATE`);
      expect(await queue.settle([{ job: second!, outcome: "complete" }, { job: other, outcome: "complete" }], { wait: false })).toEqual([
        "busy",
        "settled",
      ]);
      const settled = queue.settle([{ job: second!, outcome: "complete" }]);
      await sleep(100);
      await client.query("COMMIT");
      expect(await settled).toEqual(["settled"]);
      expect(await queue.pending()).toBe(0);
    } finally {
      await client.end();
    }
  });

  it("sends no NOTIFY for enqueues while no instance waits for jobs, and does while one does", async () => {
    const schema = newSchema();
    const [a, b] = [await open({ schema }), await open({ schema })];
    const heard: string[] = [];
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    try {
      listener.on("notification", (n) => heard.push(n.payload ?? ""));
      await listener.query(`LISTEN ${pg.escapeIdentifier(a.channel)}`);
      // Nobody watches: no NOTIFY.
      await a.enqueue([job("t", "k1")]);
      await sleep(300);
      expect(heard).toEqual([]);
      // B's worker waits (it watches, and its claims find nothing): A's enqueues wake it.
      let woken = 0;
      b.watch(() => woken++);
      await b.claim(10, 60_000); // takes k1; jobs came back: B is busy
      expect(await b.claim(10, 60_000)).toEqual([]); // nothing due: B waits
      await waitFor(async () => {
        const before = heard.length;
        await a.enqueue([job("t", `probe-${before}`)]);
        await sleep(50);
        return heard.length > before;
      }, 5000, "a NOTIFY once B holds the wake-up lock");
      await waitFor(() => woken > 0, 2000, "B's watcher to be woken");
      // A claim that comes back with jobs lets go of the lock: no NOTIFY after.
      expect((await b.claim(100, 60_000)).length).toBeGreaterThan(0);
      await sleep(200);
      const count = heard.length;
      await a.enqueue([job("t", "quiet")]);
      await sleep(300);
      expect(heard.length).toBe(count);
    } finally {
      await listener.end();
    }
  });

  it("keeps the jobs and dead jobs of a schema from before instances, in the default instance", async () => {
    const schema = newSchema();
    const q = pg.escapeIdentifier(schema);
    const pool = new pg.Pool({ connectionString: db.url });
    try {
      await migrate(pool, schema, postgresMigrations.filter((m) => m.version <= 3));
      await pool.query(`INSERT INTO ${q}.event_jobs (target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms)
        VALUES ('t', 'i/user/1', 'event', 'user.human.added', '{"old":1}', now(), 1000),
               ('t', 'i/user/1', 'event', 'user.human.added', '{"old":2}', now(), 1000)`);
      await pool.query(`INSERT INTO ${q}.event_lanes (target_id, ordering_key, head_id) SELECT 't', 'i/user/1', min(id) FROM ${q}.event_jobs`);
      await pool.query(`INSERT INTO ${q}.event_dead_jobs (id, target_id, ordering_key, execution_id, event_type, body, created_at,
          timeout_ms, enqueued_at, attempts, error)
        VALUES (99, 't', 'i/user/2', 'event', 'user.removed', '{"dead":1}', now(), 1000, now(), 3, 'status 500')`);
    } finally {
      await pool.end();
    }
    const queue = await open({ schema });
    const [first] = await queue.claim(10, 1000);
    expect(first).toMatchObject({ instanceId: "", body: '{"old":1}' });
    await queue.enqueue([job("t", "i/user/1")]); // the same lane, in the default instance
    expect(await queue.complete(first!)).toBe(true);
    expect((await queue.claim(10, 1000)).map((j) => j.body)).toEqual(['{"old":2}']);
    expect((await queue.listDead({ instanceId: "" })).map((d) => [d.id, d.instanceId, d.error])).toEqual([["99", "", "status 500"]]);
    expect(await queue.requeueDead({ instanceId: "", id: "99" })).toBe(1);
    expect(await queue.pending()).toBe(3);
  });

  it("shares the store's schema: the queue's tables are migrations of the same list", async () => {
    const schema = newSchema();
    await open({ schema });
    const rows = await db.query<{ version: number }>(`SELECT version FROM ${pg.escapeIdentifier(schema)}.migrations ORDER BY version`);
    expect(rows.map((r) => r.version)).toEqual(postgresMigrations.map((m) => m.version));
  });
});
