// Issue 14: the outbox: a write and its events' deliveries commit together, or neither does.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ActionEvent } from "../src/events/action-event.js";
import { createEventPublisher } from "../src/events/event-publisher.js";
import { silentLogger } from "../src/logger.js";
import { createExecutionPlanner } from "../src/plan/execution-planner.js";
import { createPostgresEventQueue, type PostgresEventQueue } from "../src/postgres/event-queue.js";
import { createPostgresOutbox, type PostgresOutbox } from "../src/postgres/outbox.js";
import { createPostgresStore, type PostgresStore } from "../src/postgres/store.js";
import { useTestDatabase } from "./helpers/postgres.js";
import { codeOf, waitFor } from "./helpers/wait.js";

const db = useTestDatabase();

const event = (id: string, eventType = "thing.added"): ActionEvent => ({
  aggregateID: id,
  aggregateType: "thing",
  resourceOwner: "org",
  instanceID: "",
  version: "v1",
  sequence: 1,
  eventType,
  createdAt: new Date(),
  userID: "",
  payload: { id },
});

describe("createPostgresOutbox", () => {
  let store: PostgresStore;
  let queue: PostgresEventQueue;
  let outbox: PostgresOutbox;
  const things = async () => (await db.query<{ id: string }>("SELECT id FROM things ORDER BY id")).map((r) => r.id);
  // Enqueued deliveries wait in event_inbox until a worker takes them into event_jobs (no worker runs here).
  const jobs = async () =>
    (
      await db.query<{ body: string }>(
        "SELECT body FROM (SELECT id, body FROM connect_actions.event_inbox UNION ALL SELECT id, body FROM connect_actions.event_jobs) j ORDER BY id",
      )
    ).map((r) => JSON.parse(r.body).aggregateID as string);

  beforeAll(async () => {
    store = await createPostgresStore({ connectionString: db.url, logger: silentLogger });
    queue = await createPostgresEventQueue({ connectionString: db.url, logger: silentLogger });
    const t = await store.createTarget({ name: "t", type: "webhook", endpoint: "http://127.0.0.1:9/", timeoutMs: 1000 });
    await store.setExecution({ type: "event", event: "thing.added" }, [{ target: t.id }]);
    outbox = createPostgresOutbox({ queue, publisher: createEventPublisher({ planner: createExecutionPlanner(store), queue }) });
    await db.query("CREATE TABLE things (id text PRIMARY KEY)");
  });
  afterAll(async () => {
    await queue?.close();
    await store?.close();
  });

  it("commits the write and the deliveries of its events together, and resolves the result", async () => {
    const result = await outbox.transaction(async (client) => {
      await client.query("INSERT INTO things (id) VALUES ('a')");
      return { result: "done", events: [event("a"), event("a", "thing.nobody-listens")] };
    });
    expect(result).toBe("done");
    expect(await things()).toEqual(["a"]);
    expect(await jobs()).toEqual(["a"]);
    expect(await outbox.transaction(async () => ({ result: 1, events: [] }))).toBe(1);
  });

  it("leaves neither when the caller's code fails, when the enqueue fails, or when the connection drops", async () => {
    const before = { things: await things(), jobs: await jobs() };
    // The caller's own error comes back as it was thrown.
    const own = new Error("validation failed");
    await expect(
      outbox.transaction(async (client) => {
        await client.query("INSERT INTO things (id) VALUES ('b')");
        throw own;
      }),
    ).rejects.toBe(own);
    // Finding or enqueueing the deliveries fails (an instance ID PostgreSQL cannot store): the write is rolled back.
    const bad = { ...event("c"), instanceID: "nul \u0000 here" };
    expect(
      await codeOf(
        outbox.transaction(async (client) => {
          await client.query("INSERT INTO things (id) VALUES ('c')");
          return { result: undefined, events: bad };
        }),
      ),
    ).toBe(Code.InvalidArgument);
    // The backend is terminated inside the transaction: Unavailable, nothing kept, no crash.
    const error = await outbox
      .transaction(async (client) => {
        await client.query("INSERT INTO things (id) VALUES ('d')");
        const pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
        await db.query("SELECT pg_terminate_backend($1)", [pid]);
        await waitFor(async () => (await db.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).length === 0, 10_000, "the backend to go");
        return { result: undefined, events: event("d") };
      })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect({ things: await things(), jobs: await jobs() }).toEqual(before);
    // And the pool goes on with a working connection.
    await outbox.transaction(async (client) => {
      await client.query("INSERT INTO things (id) VALUES ('e')");
      return { result: undefined, events: event("e") };
    });
    expect(await jobs()).toEqual([...before.jobs, "e"]);
  });
});
