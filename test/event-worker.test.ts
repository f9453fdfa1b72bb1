// The event worker's sharing of slots between instances and its batched settling, on the
// memory queue and on PostgreSQL, against real loopback targets.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventJob, EventQueue, SettleResult } from "../src/events/event-queue.js";
import { createEventWorker, type EventWorker, type EventWorkerOptions } from "../src/events/event-worker.js";
import { createMemoryEventQueue } from "../src/events/memory-event-queue.js";
import { createTargetDispatcher, type TargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { silentLogger } from "../src/logger.js";
import { createExecutionPlanner, type ExecutionPlanner } from "../src/plan/execution-planner.js";
import { createPostgresEventQueue } from "../src/postgres/event-queue.js";
import type { ActionStore } from "../src/store/action-store.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { job } from "./helpers/event-jobs.js";
import { openInFreshSchema, useTestDatabase } from "./helpers/postgres.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";
import { waitFor } from "./helpers/wait.js";

const db = useTestDatabase();

const queues: [string, () => Promise<{ queue: EventQueue; cleanup: () => Promise<void> }>][] = [
  [
    "memory",
    async () => {
      const queue = createMemoryEventQueue();
      return { queue, cleanup: () => queue.close() };
    },
  ],
  [
    "postgres",
    async () => {
      const { opened: queue, cleanup } = await openInFreshSchema(db, "w", (schema) =>
        createPostgresEventQueue({ connectionString: db.url, schema, logger: silentLogger }),
      );
      return { queue, cleanup };
    },
  ],
];

let targets: TargetServer;
let store: ActionStore;
let planner: ExecutionPlanner;
let dispatcher: TargetDispatcher;
let worker: EventWorker | undefined;
let release: () => void;
let released: Promise<void>;

beforeEach(async () => {
  targets = await startTargetServer();
  store = createMemoryStore();
  planner = createExecutionPlanner(store);
  dispatcher = createTargetDispatcher({ logger: silentLogger });
  released = new Promise<void>((r) => (release = r));
});
afterEach(async () => {
  release();
  await worker?.stop();
  worker = undefined;
  await dispatcher.close();
  await targets.close();
  planner.close();
});

const startWorker = (queue: EventQueue, extra: Partial<EventWorkerOptions> = {}) => {
  worker = createEventWorker({ queue, planner, dispatcher, logger: silentLogger, pollIntervalMs: 100, ...extra });
  worker.start();
};
const hook = (path: string, instanceId: string, timeoutMs = 5000) =>
  store.forInstance(instanceId).createTarget({ name: path, type: "webhook", endpoint: targets.endpoint(path), timeoutMs });
const jobsFor = (instanceId: string, targetId: string, n: number): EventJob[] =>
  Array.from({ length: n }, (_, i) => job(targetId, `${instanceId}/user/${i}`, { instanceId, timeoutMs: 60_000 }));

for (const [kind, open] of queues) {
  describe(`event worker on the ${kind} queue`, () => {
    it("keeps delivering the other instances' events while one instance's target hangs", async () => {
      const { queue, cleanup } = await open();
      try {
        // "a"'s target answers only when the test ends; its jobs are the oldest.
        targets.route("/hang", () => released.then(() => ({ status: 200 })));
        const hang = await hook("/hang", "a", 60_000);
        const ok = await hook("/ok", "b");
        await queue.enqueue(jobsFor("a", hang.id, 20));
        await queue.enqueue(jobsFor("b", ok.id, 6));
        startWorker(queue, { concurrency: 4 }); // at most 3 of one instance
        await targets.waitFor("/ok", 6, 20_000);
        expect(targets.callsTo("/hang").length).toBeLessThanOrEqual(3);
        expect(targets.callsTo("/hang").length).toBeGreaterThan(0);
        await waitFor(async () => (await queue.pending()) === 20, 5000, "b's deliveries to be settled");
      } finally {
        release();
        await worker?.stop();
        await cleanup();
      }
    }, 40_000);

    it("shares slots with a cap set explicitly: one instance never has more in flight than its cap", async () => {
      const { queue, cleanup } = await open();
      try {
        let inFlight = 0;
        let most = 0;
        targets.route("/slow", async () => {
          most = Math.max(most, ++inFlight);
          await new Promise((r) => setTimeout(r, 30));
          inFlight--;
          return { status: 200 };
        });
        const slow = await hook("/slow", "a");
        await queue.enqueue(jobsFor("a", slow.id, 30));
        startWorker(queue, { concurrency: 8, maxInFlightPerInstance: 2 });
        await targets.waitFor("/slow", 30, 30_000);
        expect(most).toBeLessThanOrEqual(2);
        expect(most).toBe(2);
      } finally {
        await worker?.stop();
        await cleanup();
      }
    }, 40_000);

    it("settles finished deliveries in batches: those that finish during a settle go in the next one", async () => {
      const { queue: inner, cleanup } = await open();
      try {
        const calls: number[] = [];
        let firstDone = false;
        const queue: EventQueue = {
          ...inner,
          watch: (l) => inner.watch(l),
          async settleAndClaim(settlements, ...rest) {
            if (settlements.length > 0) {
              calls.push(settlements.length);
              if (!firstDone) {
                firstDone = true;
                // Hold the first settling cycle until every other slot's delivery finished.
                await targets.waitFor("/ok", 16, 20_000);
                await new Promise((r) => setTimeout(r, 200));
              }
            }
            return inner.settleAndClaim(settlements, ...rest);
          },
        };
        const ok = await hook("/ok", "i");
        await queue.enqueue(jobsFor("i", ok.id, 20));
        startWorker(queue, { concurrency: 16, maxInFlightPerInstance: 16 });
        await targets.waitFor("/ok", 20, 20_000);
        await waitFor(async () => (await inner.pending()) === 0, 10_000, "every delivery to be settled");
        expect(calls.reduce((a, b) => a + b, 0)).toBe(20);
        expect(Math.max(...calls)).toBeGreaterThan(1);
        expect(targets.callsTo("/ok")).toHaveLength(20);
      } finally {
        await worker?.stop();
        await cleanup();
      }
    }, 40_000);

    it("sends busy and failed settlements again until they are settled, delivering each event once", async () => {
      const { queue: inner, cleanup } = await open();
      try {
        const answers = new Map<string, number>();
        let failures = 3;
        const queue: EventQueue = {
          ...inner,
          watch: (l) => inner.watch(l),
          async settleAndClaim(settlements, ...rest) {
            if (settlements.length > 0 && failures-- > 0) {
              throw new ConnectError("postgres event queue: connection terminated", Code.Unavailable);
            }
            // Every job's first two settlements find its lane busy.
            const busy = settlements.map((s) => {
              const n = (answers.get(s.job.id) ?? 0) + 1;
              answers.set(s.job.id, n);
              return n <= 2;
            });
            const out = await inner.settleAndClaim(
              settlements.filter((_, i) => !busy[i]),
              ...rest,
            );
            let k = 0;
            return { jobs: out.jobs, results: busy.map((b): SettleResult => (b ? "busy" : out.results[k++]!)) };
          },
        };
        const ok = await hook("/ok", "i");
        await queue.enqueue(jobsFor("i", ok.id, 10));
        startWorker(queue);
        await waitFor(async () => (await inner.pending()) === 0, 20_000, "every delivery to be settled");
        expect(targets.callsTo("/ok")).toHaveLength(10);
        expect([...answers.values()].every((n) => n >= 3)).toBe(true);
        expect(failures).toBeLessThan(0);
      } finally {
        await worker?.stop();
        await cleanup();
      }
    }, 40_000);
  });
}
