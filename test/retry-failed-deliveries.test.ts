// Issue 11: RetryFailedEventDeliveries puts given-up event deliveries back into the queue (EventQueue.requeueDead),
// by ID, by target or by event type, in the caller's instance only; each given-up delivery is retried once. With the
// memory queue and the PostgreSQL queue, end to end: a target answering 410 makes the worker give up, the target
// then answers 200 and receives the retried deliveries.
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ActionService } from "../gen/zitadel/action/v2/action_service_pb.js";
import type { EventQueue } from "../src/events/event-queue.js";
import { createMemoryEventQueue } from "../src/events/memory-event-queue.js";
import { silentLogger } from "../src/logger.js";
import { createPostgresEventQueue } from "../src/postgres/event-queue.js";
import { createActionService } from "../src/management/action-service.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { newSchemaName, useTestDatabase } from "./helpers/postgres.js";
import { startSampleHarness } from "./helpers/sample-harness.js";
import { waitFor } from "./helpers/wait.js";

const db = useTestDatabase();

const queues: [string, () => Promise<EventQueue>][] = [
  ["memory", async () => createMemoryEventQueue()],
  ["postgres", () => createPostgresEventQueue({ connectionString: db.url, schema: newSchemaName("r"), logger: silentLogger })],
];

const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => ConnectError.from(e));

describe.each(queues)("RetryFailedEventDeliveries with the %s queue", (_name, makeQueue) => {
  it("retries given-up deliveries by ID, by target and by event type, each once, in the caller's instance", async () => {
    const eventQueue = await makeQueue();
    const h = await startSampleHarness({ eventQueue, eventWorker: { pollIntervalMs: 20, retry: { initialDelayMs: 20, maxDelayMs: 50 } } });
    try {
      const client = h.actions();
      const webhook = async (name: string, path: string) =>
        (await client.createTarget({ name, targetType: { case: "restWebhook", value: { interruptOnError: false } }, endpoint: h.targets.endpoint(path), timeout: { seconds: 5n } })).id;
      h.targets.route("/a", { status: 410 });
      h.targets.route("/b", { status: 410 });
      const [a, b] = [await webhook("a", "/a"), await webhook("b", "/b")];
      await client.setExecution({ condition: { conditionType: { case: "event", value: { condition: { case: "all", value: true } } } }, targets: [a, b] });
      const { userId } = await h.users().addHumanUser({ profile: { givenName: "R", familyName: "Etry" }, email: { email: "retry@example.com" } });
      await h.users().deleteUser({ userId });
      // A delivery of another instance, given up too (its target does not exist there): never retried from here.
      await eventQueue.enqueue([
        { instanceId: "other", targetId: a, executionId: "event", eventType: "user.removed", orderingKey: "other/user/1", body: "{}", createdAt: new Date(), timeoutMs: 1000 },
      ]);
      const dead = async () => (await client.listFailedEventDeliveries({})).deliveries;
      await waitFor(async () => (await dead()).length === 4, 20_000, "four given-up deliveries");
      await waitFor(async () => (await eventQueue.listDead({ instanceId: "other" })).length === 1, 20_000, "the other instance's given-up delivery");
      expect((await dead()).map((d) => `${d.targetId === a ? "a" : "b"} ${d.eventType}`).sort()).toEqual([
        "a user.human.added",
        "a user.removed",
        "b user.human.added",
        "b user.removed",
      ]);
      h.targets.route("/a", { status: 200 });
      h.targets.route("/b", { status: 200 });
      const received = (path: string, eventType: string) => h.targets.callsTo(path).filter((c) => c.json?.event_type === eventType).length;

      // By ID: once; the second retry of the same ID finds nothing.
      const one = (await dead()).find((d) => d.targetId === a && d.eventType === "user.human.added")!;
      expect((await client.retryFailedEventDeliveries({ id: one.id })).retried).toBe(1);
      expect((await client.retryFailedEventDeliveries({ id: one.id })).retried).toBe(0);
      await waitFor(() => received("/a", "user.human.added") === 2, 20_000, "a's retried user.human.added");

      // By target, over REST.
      const byTarget = await h.rest("POST", "/v2/actions/events/failed/retry", { targetId: b }, h.auth);
      expect([byTarget.status, byTarget.json]).toEqual([200, { retried: 2 }]);
      await waitFor(() => received("/b", "user.human.added") === 2 && received("/b", "user.removed") === 2, 20_000, "b's retried deliveries");

      // By event type (v2beta): a's user.removed is left; the other instance's is not the caller's.
      expect((await h.actions("v2beta").retryFailedEventDeliveries({ eventType: "user.removed" })).retried).toBe(1);
      await waitFor(() => received("/a", "user.removed") === 2, 20_000, "a's retried user.removed");
      await waitFor(async () => (await dead()).length === 0, 20_000, "no given-up delivery left");
      expect(await eventQueue.listDead({ instanceId: "other" })).toHaveLength(1);
      expect((await client.retryFailedEventDeliveries({ eventType: "user.removed" })).retried).toBe(0);

      const none = await errorOf(client.retryFailedEventDeliveries({}));
      expect([none?.code, none?.rawMessage]).toEqual([Code.InvalidArgument, "one of id, target_id or event_type is required"]);
      expect((await errorOf(client.retryFailedEventDeliveries({ targetId: "x".repeat(201) })))?.code).toBe(Code.InvalidArgument);
      expect((await h.rest("POST", "/v2/actions/events/failed/retry", {}, h.auth)).status).toBe(400);
      expect((await h.rest("POST", "/v2/actions/events/failed/retry", { id: "1" })).status).toBe(401);
    } finally {
      await h.close();
    }
  }, 60_000);
});

describe("RetryFailedEventDeliveries without an event queue", () => {
  it("is Unimplemented, as ListFailedEventDeliveries", async () => {
    const impl = createActionService({ store: createMemoryStore(), services: [] });
    const client = createClient(ActionService, createRouterTransport((router) => router.service(ActionService, impl)));
    expect((await errorOf(client.retryFailedEventDeliveries({ id: "1" })))?.code).toBe(Code.Unimplemented);
    expect((await errorOf(client.listFailedEventDeliveries({})))?.code).toBe(Code.Unimplemented);
  });
});
