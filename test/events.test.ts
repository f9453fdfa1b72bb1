import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { type ActionEvent, encodeEventPayload, rfc3339Nano } from "../src/events/action-event.js";
import type { InstanceStore } from "../src/store/action-store.js";
import { createEventPublisher, type EventPublisher } from "../src/events/event-publisher.js";
import type { EventQueue } from "../src/events/event-queue.js";
import { createEventWorker, type EventWorker, isPermanentFailure, retryDelayMs } from "../src/events/event-worker.js";
import { createExecutionPlanner, type ExecutionPlanner } from "../src/plan/execution-planner.js";
import { silentLogger } from "../src/logger.js";
import { createMemoryEventQueue } from "../src/events/memory-event-queue.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { verifySignature } from "../src/dispatch/signature.js";
import { createTargetDispatcher, executionFailed, type TargetCallRecord, type TargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let seq = 0;
const event = (eventType: string, aggregateID = "u1", extra: Partial<ActionEvent> = {}): ActionEvent => ({
  aggregateID,
  aggregateType: "user",
  resourceOwner: "org-1",
  instanceID: "inst-1",
  version: "v2",
  sequence: ++seq,
  eventType,
  createdAt: new Date(),
  userID: "admin-1",
  payload: { n: seq },
  ...extra,
});

describe("encodeEventPayload", () => {
  it("writes ZITADEL's event payload, keys in order", () => {
    const e = event("user.human.added", "u9", { createdAt: new Date("2026-03-04T05:06:07.120Z"), sequence: 7, payload: { email: "a@b.c" } });
    const body = JSON.parse(encodeEventPayload(e));
    expect(Object.keys(body)).toEqual([
      "aggregateID", "aggregateType", "resourceOwner", "instanceID", "version", "sequence", "event_type", "created_at", "userID", "event_payload",
    ]);
    expect(body).toEqual({
      aggregateID: "u9", aggregateType: "user", resourceOwner: "org-1", instanceID: "inst-1", version: "v2", sequence: 7,
      event_type: "user.human.added", created_at: "2026-03-04T05:06:07.12Z", userID: "admin-1", event_payload: { email: "a@b.c" },
    });
  });

  it("formats times like Go's RFC3339Nano", () => {
    expect(rfc3339Nano(new Date("2026-03-04T05:06:07.000Z"))).toBe("2026-03-04T05:06:07Z");
    expect(rfc3339Nano(new Date("2026-03-04T05:06:00.500Z"))).toBe("2026-03-04T05:06:00.5Z");
    expect(rfc3339Nano(new Date("2026-03-04T05:06:10.001Z"))).toBe("2026-03-04T05:06:10.001Z");
  });
});

describe("retry policy", () => {
  it("doubles the delay per attempt up to the maximum, within the jitter", () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 10].map((a) => retryDelayMs({ initialDelayMs: 100, maxDelayMs: 500 }, a, mid))).toEqual([100, 200, 400, 500, 500]);
    expect(retryDelayMs({ initialDelayMs: 100, jitter: 0.2 }, 1, () => 0)).toBe(80);
    expect(retryDelayMs({ initialDelayMs: 100, jitter: 0.2 }, 1, () => 1)).toBe(120);
  });

  it("retries 5xx, 408, 429 and unanswered calls, not other 4xx", () => {
    expect(isPermanentFailure(executionFailed("x", 404))).toBe(true);
    expect(isPermanentFailure(executionFailed("x", 400))).toBe(true);
    expect(isPermanentFailure(executionFailed("x", 429))).toBe(false);
    expect(isPermanentFailure(executionFailed("x", 408))).toBe(false);
    expect(isPermanentFailure(executionFailed("x", 503))).toBe(false);
    expect(isPermanentFailure(executionFailed("timed out", 0))).toBe(false);
  });
});

describe("event delivery", () => {
  let targets: TargetServer;
  /** The store of the events' instance, "inst-1". */
  let store: InstanceStore;
  let planner: ExecutionPlanner;
  let queue: EventQueue;
  let dispatcher: TargetDispatcher;
  let publisher: EventPublisher;
  let worker: EventWorker;
  let records: TargetCallRecord[];

  const hook = async (path: string, timeoutMs = 2000) =>
    store.createTarget({ name: path, type: "webhook", endpoint: targets.endpoint(path), timeoutMs });
  const startWorker = (extra: Partial<Parameters<typeof createEventWorker>[0]> = {}) => {
    worker = createEventWorker({
      queue, planner, dispatcher, logger: silentLogger, pollIntervalMs: 50,
      retry: { initialDelayMs: 100, maxDelayMs: 1000 }, ...extra,
    });
    worker.start();
  };

  beforeEach(async () => {
    targets = await startTargetServer();
    const root = createMemoryStore();
    store = root.forInstance("inst-1");
    planner = createExecutionPlanner(root);
    queue = createMemoryEventQueue();
    records = [];
    dispatcher = createTargetDispatcher({ logger: silentLogger, onCall: (r) => records.push(r) });
    publisher = createEventPublisher({ planner, queue });
  });
  afterEach(async () => {
    await worker?.stop();
    await dispatcher.close();
    await targets.close();
    planner.close();
  });

  it("delivers the signed payload of an event to the best-matching execution's targets", async () => {
    const exact = await hook("/exact");
    const group = await hook("/group");
    const all = await hook("/all");
    await store.setExecution({ type: "event", event: "user.human.added" }, [{ target: exact.id }]);
    await store.setExecution({ type: "event", group: "user.human" }, [{ target: group.id }]);
    await store.setExecution({ type: "event", all: true }, [{ target: all.id }]);
    startWorker();
    const added = event("user.human.added");
    expect(await publisher.publish([added, event("user.human.changed"), event("org.added", "o1")])).toBe(3);
    await Promise.all([targets.waitFor("/exact"), targets.waitFor("/group"), targets.waitFor("/all")]);
    const [call] = targets.callsTo("/exact");
    expect(call!.body).toBe(encodeEventPayload(added));
    expect(verifySignature(call!.body, call!.headers["zitadel-signature"] as string, exact.signingKey)).toBeInstanceOf(Date);
    expect(targets.callsTo("/group")[0]!.json.event_type).toBe("user.human.changed");
    expect(targets.callsTo("/all")[0]!.json.event_type).toBe("org.added");
    expect(records.find((r) => r.targetId === exact.id)).toMatchObject({ executionId: "event/user.human.added", trigger: "user.human.added", attempt: 1, status: 200 });
  });

  it("refuses, enqueuing nothing, events at maxHops that would be delivered; others pass whatever their hops", async () => {
    const exact = await hook("/exact");
    await store.setExecution({ type: "event", event: "user.human.added" }, [{ target: exact.id }]);
    const looping = { ...event("user.human.added"), hops: 1 };
    const error = await publisher.publish([event("user.human.added"), looping]).then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(error?.code).toBe(Code.FailedPrecondition);
    expect(error?.rawMessage).toMatch(/^actions loop: .*Actions-Hop: 1.*"user\.human\.added".*event\/user\.human\.added/i);
    expect(await queue.pending()).toBe(0);
    await expect(publisher.jobsFor(looping)).rejects.toThrow(/actions loop/);
    // Without an execution there is nothing to loop; with maxHops 2 one more level passes.
    expect(await publisher.publish({ ...event("user.removed"), hops: 7 })).toBe(0);
    expect(await createEventPublisher({ planner, queue, maxHops: 2 }).publish(looping)).toBe(1);
    for (const maxHops of [0, 1.5, 1001]) expect(() => createEventPublisher({ planner, queue, maxHops })).toThrow(/maxHops must be an integer/);
    for (const maxHops of [0, -1]) expect(() => createEventWorker({ queue, planner, dispatcher, maxHops })).toThrow(/maxHops must be an integer/);
  });

  it("sends event deliveries with Actions-Hop: maxHops", async () => {
    const exact = await hook("/exact");
    await store.setExecution({ type: "event", event: "user.human.added" }, [{ target: exact.id }]);
    startWorker({ maxHops: 3 });
    await publisher.publish(event("user.human.added"));
    const [call] = await targets.waitFor("/exact");
    expect(call!.headers["actions-hop"]).toBe("3");
  });

  it("enqueues nothing for events without an execution", async () => {
    expect(await publisher.publish(event("user.human.added"))).toBe(0);
    expect(await queue.pending()).toBe(0);
  });

  it("ignores what an event target answers, as long as it is 2xx", async () => {
    targets.route("/odd", { body: { forwardedStatusCode: 403, whatever: true } });
    const t = await hook("/odd");
    await store.setExecution({ type: "event", all: true }, [{ target: t.id }]);
    startWorker();
    await publisher.publish(event("user.human.added"));
    await targets.waitFor("/odd");
    await waitUntil(async () => (await queue.pending()) === 0);
    expect(await queue.listDead()).toEqual([]);
  });

  it("retries 5xx answers with backoff until they succeed, in order per aggregate", async () => {
    let failures = 3;
    targets.route("/flaky", () => (failures-- > 0 ? { status: 503 } : { status: 200 }));
    const t = await hook("/flaky");
    await store.setExecution({ type: "event", all: true }, [{ target: t.id }]);
    startWorker({ retry: { initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 } });
    const events = [event("user.human.added", "a"), event("user.human.changed", "a"), event("user.removed", "a")];
    await publisher.publish(events);
    const calls = await targets.waitFor("/flaky", 6);
    await waitUntil(async () => (await queue.pending()) === 0);
    // The first event is tried 4 times before the second one goes out.
    expect(calls.map((c) => c.json.sequence)).toEqual([events[0]!.sequence, events[0]!.sequence, events[0]!.sequence, events[0]!.sequence, events[1]!.sequence, events[2]!.sequence]);
    expect(records.filter((r) => r.targetId === t.id).map((r) => r.attempt)).toEqual([1, 2, 3, 4, 1, 1]);
    // Backoff 100, 200, 400 ms: no retry came earlier (later is up to the machine).
    const gaps = calls.slice(1, 4).map((c, i) => c.receivedAt - calls[i]!.receivedAt);
    expect(gaps.map((gap, i) => gap >= 100 * 2 ** i)).toEqual([true, true, true]);
  });

  it("gives up at once on a 4xx answer and goes on with the next event", async () => {
    targets.route("/reject", (c) => (c.json.event_type === "user.human.added" ? { status: 404 } : { status: 200 }));
    const t = await hook("/reject");
    await store.setExecution({ type: "event", all: true }, [{ target: t.id }]);
    startWorker();
    await publisher.publish([event("user.human.added"), event("user.removed")]);
    await targets.waitFor("/reject", 2);
    await waitUntil(async () => (await queue.pending()) === 0);
    const dead = await queue.listDead();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ eventType: "user.human.added", attempts: 1 });
    expect(dead[0]!.error).toMatch(/status 404/);
  });

  it("gives up deliveries older than the max age", async () => {
    targets.route("/down", { status: 500 });
    const t = await hook("/down");
    await store.setExecution({ type: "event", all: true }, [{ target: t.id }]);
    startWorker({ maxAgeMs: 400 });
    await publisher.publish(event("user.human.added"));
    await waitUntil(async () => (await queue.listDead()).length === 1);
    expect((await queue.listDead())[0]!.error).toMatch(/older than 400 ms/);
    expect(targets.callsTo("/down").length).toBeGreaterThanOrEqual(1);
  });

  it("gives up deliveries to a deleted target", async () => {
    const t = await hook("/gone");
    await store.setExecution({ type: "event", all: true }, [{ target: t.id }]);
    await publisher.publish(event("user.human.added"));
    await store.deleteTarget(t.id);
    startWorker();
    await waitUntil(async () => (await queue.listDead()).length === 1);
    expect((await queue.listDead())[0]!.error).toBe("the target was deleted");
    expect(targets.calls).toEqual([]);
  });

  it("delivers every event once, in order per aggregate, after the target was down for 30 s", async () => {
    // A target that refuses connections for 30 s, then comes back on the same port.
    const received: { aggregate: string; sequence: number }[] = [];
    const serve = () =>
      http.createServer((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
          const p = JSON.parse(body);
          received.push({ aggregate: p.aggregateID, sequence: p.sequence });
          res.end();
        });
      });
    let server = serve();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const t = await store.createTarget({ name: "outage", type: "webhook", endpoint: `http://127.0.0.1:${port}/`, timeoutMs: 1000 });
    await store.setExecution({ type: "event", group: "user" }, [{ target: t.id }]);
    startWorker({ retry: { initialDelayMs: 200, maxDelayMs: 2000 } });
    const published: ActionEvent[] = [];
    const downUntil = Date.now() + 30_000;
    while (Date.now() < downUntil - 1000) {
      for (const agg of ["a", "b", "c"]) {
        const e = event("user.human.changed", agg);
        published.push(e);
        await publisher.publish(e);
      }
      await sleep(1000);
    }
    expect(received).toEqual([]);
    await sleep(Math.max(0, downUntil - Date.now()));
    server = serve();
    await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
    try {
      await waitUntil(async () => (await queue.pending()) === 0, 20_000);
      expect(received.length).toBe(published.length);
      for (const agg of ["a", "b", "c"]) {
        const sequences = received.filter((r) => r.aggregate === agg).map((r) => r.sequence);
        expect(sequences).toEqual(published.filter((e) => e.aggregateID === agg).map((e) => e.sequence));
      }
      expect(await queue.listDead()).toEqual([]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  }, 90_000);
});

async function waitUntil(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await sleep(25);
  }
}
