// The PostgreSQL event queue and its worker under terminated backends: every connection of the
// database is killed again and again while events are enqueued and delivered. The process must
// live on (a client without an 'error' listener would crash it), and every event whose enqueue
// was acknowledged must be delivered.
import pg from "pg";
import { describe, expect, it } from "vitest";
import { createTargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { createEventWorker } from "../src/events/event-worker.js";
import type { EventJob } from "../src/events/event-queue.js";
import { silentLogger } from "../src/logger.js";
import { createExecutionPlanner } from "../src/plan/execution-planner.js";
import { createPostgresEventQueue } from "../src/postgres/event-queue.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { job } from "./helpers/event-jobs.js";
import { useTestDatabase } from "./helpers/postgres.js";
import { startTargetServer } from "./helpers/target-server.js";
import { sleep, waitFor } from "./helpers/wait.js";

const db = useTestDatabase();

describe("postgres event queue under terminated backends", () => {
  it("keeps the process alive and delivers every acknowledged event", async () => {
    const targets = await startTargetServer();
    const store = createMemoryStore();
    const planner = createExecutionPlanner(store);
    const dispatcher = createTargetDispatcher({ logger: silentLogger });
    const queue = await createPostgresEventQueue({ connectionString: db.url, logger: silentLogger });
    const appPool = new pg.Pool({ connectionString: db.url, max: 4 });
    appPool.on("error", () => {}); // idle clients of the application's own pool
    const worker = createEventWorker({
      queue, planner, dispatcher, logger: silentLogger, pollIntervalMs: 200, graceMs: 1000,
      retry: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    try {
      await appPool.query("CREATE TABLE app_rows (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL)");
      const target = await store.forInstance("i").createTarget({ name: "events", type: "webhook", endpoint: targets.endpoint("/events"), timeoutMs: 2000 });
      worker.start();

      const acknowledged = new Set<string>();
      let failures = 0;
      let producing = true;
      // Each producer enqueues its aggregate's events one after the other, retrying until the
      // enqueue is acknowledged; half of them write a row and enqueue in one transaction.
      const produce = async (p: number) => {
        for (let seq = 0; producing || seq < 20; seq++) {
          const event: EventJob = job(target.id, `crash/agg-${p}`, { instanceId: "i", timeoutMs: 2000 });
          for (;;) {
            try {
              if (p % 2 === 0) {
                await queue.enqueue([event]);
              } else {
                const client = await appPool.connect();
                const onError = () => {}; // a checked-out client needs a listener of its own
                client.on("error", onError);
                let broken = false;
                try {
                  await client.query("BEGIN");
                  await client.query("INSERT INTO app_rows (body) VALUES ($1)", [event.body]);
                  await queue.enqueueWith(client, [event]);
                  await client.query("COMMIT");
                } catch (error) {
                  broken = true;
                  await client.query("ROLLBACK").catch(() => {});
                  throw error;
                } finally {
                  client.removeListener("error", onError);
                  client.release(broken);
                }
              }
              acknowledged.add(event.body);
              break;
            } catch {
              failures++;
              await sleep(20);
            }
          }
          await sleep(5);
        }
      };
      const producers = Array.from({ length: 6 }, (_, p) => produce(p));

      let terminated = 0;
      for (let round = 0; round < 8; round++) {
        await sleep(250 + Math.random() * 250);
        const rows = await db.query<{ n: number }>(
          "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        terminated += rows[0]!.n;
      }
      producing = false;
      await Promise.all(producers);
      expect(terminated).toBeGreaterThan(8);
      expect(failures).toBeGreaterThan(0);
      expect(acknowledged.size).toBeGreaterThan(100);

      const delivered = () => new Set(targets.callsTo("/events").map((c) => c.body));
      await waitFor(() => [...acknowledged].every((b) => delivered().has(b)), 60_000, "every acknowledged event to be delivered", 100);
      await waitFor(async () => (await queue.pending().catch(() => -1)) === 0, 30_000, "the queue to be empty", 100);
      expect(await queue.listDead()).toEqual([]);
    } finally {
      await worker.stop();
      await queue.close();
      await appPool.end();
      planner.close();
      await dispatcher.close();
      await targets.close();
    }
  }, 120_000);
});
