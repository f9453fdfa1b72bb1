// The contract every EventQueue implementation passes. A queue's test file calls
// describeEventQueueContract with a factory that returns a fresh, empty queue.
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventQueue, QueuedJob } from "../events/event-queue.js";
import { codeOf, sleep, testJob as job } from "./support.js";

/**
 * EventQueueFixture is what a queue's factory gives describeEventQueueContract:
 * a fresh, empty queue, and how to dispose of it (stop it, drop its tables).
 */
export interface EventQueueFixture {
  readonly queue: EventQueue;
  cleanup(): Promise<void>;
}

/**
 * describeEventQueueContract declares the EventQueue contract tests (vitest's
 * describe/it) for the queues `factory` makes, one fresh queue per test:
 * enqueue, claim with per-lane order and leases, settle, retry, give up,
 * list and requeue dead jobs (each once), instances and their turns, watch.
 * An adapter for another database passes it to prove itself.
 */
export function describeEventQueueContract(name: string, factory: () => Promise<EventQueueFixture>): void {
  describe(`EventQueue contract: ${name}`, () => {
    let fixture: EventQueueFixture;
    let queue: EventQueue;
    beforeEach(async () => {
      fixture = await factory();
      queue = fixture.queue;
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    it("claims enqueued jobs oldest first, as attempt 1, with their fields intact", async () => {
      const a = job("t1", "k1");
      const b = job("t1", "k2");
      await queue.enqueue([a, b]);
      expect(await queue.pending()).toBe(2);
      const claimed = await queue.claim(10, 1000);
      expect(claimed.map((j) => j.body)).toEqual([a.body, b.body]);
      expect(claimed[0]).toMatchObject({ ...a, attempt: 1, lastError: "" });
      expect(claimed[0]!.createdAt.getTime()).toBe(a.createdAt.getTime());
      expect(claimed[0]!.lease).not.toBe("");
      expect(claimed[0]!.id).not.toBe(claimed[1]!.id);
    });

    it("does nothing for an empty enqueue", async () => {
      await queue.enqueue([]);
      expect(await queue.pending()).toBe(0);
      expect(await queue.claim(10, 1000)).toEqual([]);
    });

    it("respects the claim limit", async () => {
      await queue.enqueue(Array.from({ length: 5 }, (_, i) => job("t", `k${i}`)));
      expect((await queue.claim(3, 1000)).length).toBe(3);
      expect((await queue.claim(3, 1000)).length).toBe(2);
    });

    it("hands out one job per target and ordering key at a time, in order", async () => {
      const jobs = [job("t1", "agg"), job("t1", "agg"), job("t1", "agg"), job("t2", "agg"), job("t1", "other")];
      await queue.enqueue(jobs);
      const first = await queue.claim(10, 1000);
      expect(first.map((j) => j.body).sort()).toEqual([jobs[0]!.body, jobs[3]!.body, jobs[4]!.body].sort());
      expect(await queue.claim(10, 1000)).toEqual([]);
      const head = first.find((j) => j.body === jobs[0]!.body)!;
      expect(await queue.complete(head)).toBe(true);
      const second = await queue.claim(10, 1000);
      expect(second.map((j) => j.body)).toEqual([jobs[1]!.body]);
      expect(await queue.pending()).toBe(4);
    });

    it("never gives the same job to two concurrent claims", async () => {
      await queue.enqueue(Array.from({ length: 20 }, (_, i) => job("t", `k${i}`)));
      const results = await Promise.all(Array.from({ length: 5 }, () => queue.claim(10, 1000)));
      const ids = results.flat().map((j) => j.id);
      expect(ids.length).toBe(20);
      expect(new Set(ids).size).toBe(20);
    });

    it("makes a job claimable again once its lease runs out, and the stale claim cannot settle it", async () => {
      await queue.enqueue([job("t", "k", { timeoutMs: 100 })]);
      const [first] = await queue.claim(1, 0);
      expect(await queue.claim(1, 0)).toEqual([]);
      await sleep(250);
      const [second] = await queue.claim(1, 0);
      expect(second).toMatchObject({ id: first!.id, attempt: 2 });
      expect(second!.lease).not.toBe(first!.lease);
      expect(await queue.complete(first!)).toBe(false);
      expect(await queue.retry(first!, new Date(), "x")).toBe(false);
      expect(await queue.giveUp(first!, "x")).toBe(false);
      expect(await queue.complete(second!)).toBe(true);
      expect(await queue.pending()).toBe(0);
    });

    it("retries a job at its time, counting attempts and keeping the last error, while the later ones wait", async () => {
      const [a, b] = [job("t", "k"), job("t", "k")];
      await queue.enqueue([a, b]);
      const [first] = await queue.claim(10, 1000);
      expect(await queue.retry(first!, new Date(Date.now() + 300), "status 503")).toBe(true);
      expect(await queue.claim(10, 1000)).toEqual([]);
      await sleep(450);
      const [again] = await queue.claim(10, 1000);
      expect(again).toMatchObject({ id: first!.id, attempt: 2, lastError: "status 503", body: a.body });
      expect(await queue.complete(again!)).toBe(true);
      expect((await queue.claim(10, 1000)).map((j) => j.body)).toEqual([b.body]);
    });

    it("moves a given-up job to the dead jobs and lets the next one go", async () => {
      const [a, b] = [job("t", "k"), job("t", "k")];
      await queue.enqueue([a, b]);
      const [first] = await queue.claim(10, 1000);
      expect(await queue.giveUp(first!, "status 404")).toBe(true);
      const dead = await queue.listDead();
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ id: first!.id, body: a.body, attempts: 1, error: "status 404", targetId: "t" });
      expect(dead[0]!.diedAt).toBeInstanceOf(Date);
      expect((await queue.claim(10, 1000)).map((j) => j.body)).toEqual([b.body]);
      expect(await queue.pending()).toBe(1);
    });

    it("lists dead jobs newest first, up to the limit", async () => {
      await queue.enqueue([job("t", "a"), job("t", "b"), job("t", "c")]);
      for (const j of await queue.claim(10, 1000)) await queue.giveUp(j, `e${j.orderingKey}`);
      expect((await queue.listDead(2)).map((d) => d.error)).toEqual(["ec", "eb"]);
    });

    it("keeps each job's instance; lanes are per instance", async () => {
      const [a, b] = [job("t", "k", { instanceId: "inst-a" }), job("t", "k", { instanceId: "inst-b" })];
      await queue.enqueue([a, b, job("t", "k", { instanceId: "inst-a" })]);
      const claimed = await queue.claim(10, 1000);
      expect(claimed.map((j) => [j.instanceId, j.body]).sort()).toEqual([["inst-a", a.body], ["inst-b", b.body]]);
    });

    it("settles a batch of outcomes in one call, answering stale for a claim it no longer holds", async () => {
      const jobs = ["a", "b", "c", "d"].map((k) => job("t", k));
      await queue.enqueue([...jobs, job("t", "a")]);
      const claimed = await queue.claim(10, 1000);
      const byKey = (k: string) => claimed.find((j) => j.orderingKey === k)!;
      const results = await queue.settle([
        { job: byKey("a"), outcome: "complete" },
        { job: byKey("b"), outcome: "retry", runAt: new Date(Date.now() - 1000), error: "status 503" },
        { job: byKey("c"), outcome: "giveUp", error: "status 404" },
        { job: { ...byKey("d"), lease: "not the lease" }, outcome: "complete" },
      ]);
      expect(results).toEqual(["settled", "settled", "settled", "stale"]);
      // a's successor, b again (attempt 2), and nothing of d (still leased).
      const next = await queue.claim(10, 1000);
      expect(next.map((j) => [j.orderingKey, j.attempt, j.lastError]).sort()).toEqual([
        ["a", 1, ""],
        ["b", 2, "status 503"],
      ]);
      expect((await queue.listDead()).map((d) => d.orderingKey)).toEqual(["c"]);
      expect(await queue.settle([{ job: byKey("a"), outcome: "complete" }])).toEqual(["stale"]);
      expect(await queue.settle([])).toEqual([]);
    });

    it("claims instances in turns, none over its limit, and leaves out instances whose limit is 0", async () => {
      const a = [1, 2, 3, 4].map((i) => job("t", `a${i}`, { instanceId: "a" }));
      const b = [1, 2].map((i) => job("t", `b${i}`, { instanceId: "b" }));
      const c = job("t", "c1", { instanceId: "c" });
      await queue.enqueue([...a, ...b, c]);
      const keys = (jobs: QueuedJob[]) => jobs.map((j) => j.orderingKey).sort();
      // Turn 1: a1, b1, c1; turn 2: a2, b2. Never a third of a.
      expect(keys(await queue.claim(5, 1000, { maxPerInstance: 2 }))).toEqual(["a1", "a2", "b1", "b2", "c1"]);
      await queue.enqueue([job("t", "b3", { instanceId: "b" })]);
      expect(keys(await queue.claim(10, 1000, { maxPerInstance: 2, instanceLimits: new Map([["a", 0]]) }))).toEqual(["b3"]);
      expect(keys(await queue.claim(10, 1000, { instanceLimits: new Map([["a", 1]]) }))).toEqual(["a3"]);
      expect(keys(await queue.claim(10, 1000))).toEqual(["a4"]);
    });

    it("lists dead jobs per instance, and of all instances with a positional limit", async () => {
      await queue.enqueue([
        job("t", "1", { instanceId: "a" }),
        job("t", "2", { instanceId: "b" }),
        job("t", "3", { instanceId: "a" }),
      ]);
      const claimed = (await queue.claim(10, 1000)).sort((x, y) => x.orderingKey.localeCompare(y.orderingKey));
      for (const j of claimed) expect(await queue.giveUp(j, `e${j.orderingKey}`)).toBe(true);
      expect((await queue.listDead({ instanceId: "a" })).map((d) => [d.instanceId, d.error])).toEqual([["a", "e3"], ["a", "e1"]]);
      expect((await queue.listDead({ instanceId: "a", limit: 1 })).map((d) => d.error)).toEqual(["e3"]);
      expect((await queue.listDead({ instanceId: "b" })).map((d) => d.error)).toEqual(["e2"]);
      expect(await queue.listDead({ instanceId: "" })).toEqual([]);
      expect((await queue.listDead(2)).map((d) => d.error)).toEqual(["e3", "e2"]);
      expect((await queue.listDead({})).map((d) => d.error)).toEqual(["e3", "e2", "e1"]);
      expect(await codeOf(queue.listDead({ limit: -1 }))).toBe(Code.InvalidArgument);
    });

    it("requeues a dead job once, even when asked twice at the same time, as attempt 1 with its last error", async () => {
      const a = job("t", "k", { instanceId: "i" });
      await queue.enqueue([a]);
      const [first] = await queue.claim(10, 1000);
      await queue.giveUp(first!, "status 500");
      const [dead] = await queue.listDead({ instanceId: "i" });
      const query = { instanceId: "i", id: dead!.id };
      const counts = await Promise.all([queue.requeueDead(query), queue.requeueDead(query)]);
      expect(counts.sort()).toEqual([0, 1]);
      expect(await queue.requeueDead(query)).toBe(0);
      expect(await queue.listDead()).toEqual([]);
      expect(await queue.pending()).toBe(1);
      const [again] = await queue.claim(10, 1000);
      expect(again).toMatchObject({ body: a.body, instanceId: "i", targetId: "t", orderingKey: "k", attempt: 1, lastError: "status 500" });
      expect(again!.id).not.toBe(first!.id);
      expect(again!.createdAt.getTime()).toBe(a.createdAt.getTime());
      expect(again!.enqueuedAt.getTime()).toBeGreaterThanOrEqual(first!.enqueuedAt.getTime());
      expect(await queue.complete(again!)).toBe(true);
      expect(await queue.pending()).toBe(0);
    });

    it("requeues all dead jobs of a target or an event type, of one instance only", async () => {
      await queue.enqueue([
        job("t1", "1", { instanceId: "a", eventType: "x" }),
        job("t2", "2", { instanceId: "a", eventType: "y" }),
        job("t2", "3", { instanceId: "a", eventType: "x" }),
        job("t1", "4", { instanceId: "b", eventType: "x" }),
      ]);
      for (const j of await queue.claim(10, 1000)) await queue.giveUp(j, "gone");
      const [deadOfB] = await queue.listDead({ instanceId: "b" });
      expect(await queue.requeueDead({ instanceId: "a", id: deadOfB!.id })).toBe(0);
      expect(await queue.requeueDead({ instanceId: "a", targetId: "t1" })).toBe(1);
      expect(await queue.requeueDead({ instanceId: "a", eventType: "x" })).toBe(1);
      expect(await queue.requeueDead({ instanceId: "a", targetId: "t2", eventType: "y" })).toBe(1);
      expect(await queue.requeueDead({ instanceId: "a", targetId: "t1" })).toBe(0);
      expect((await queue.listDead()).map((d) => [d.instanceId, d.orderingKey])).toEqual([["b", "4"]]);
      expect((await queue.claim(10, 1000)).map((j) => j.orderingKey).sort()).toEqual(["1", "2", "3"]);
    });

    it("puts requeued jobs behind the jobs their lane holds, in the order they were first enqueued", async () => {
      const [j1, j2, j3] = [job("t", "k"), job("t", "k"), job("t", "k")];
      await queue.enqueue([j1, j2, j3]);
      for (let i = 0; i < 2; i++) {
        const [head] = await queue.claim(10, 1000);
        await queue.giveUp(head!, "status 500");
      }
      expect(await queue.requeueDead({ instanceId: "", targetId: "t" })).toBe(2);
      const order: string[] = [];
      for (let i = 0; i < 3; i++) {
        const claimed = await queue.claim(10, 1000);
        expect(claimed).toHaveLength(1);
        order.push(claimed[0]!.body);
        await queue.complete(claimed[0]!);
      }
      expect(order).toEqual([j3.body, j1.body, j2.body]);
    });

    it("refuses a requeue that selects no target, event type or ID", async () => {
      expect(await codeOf(queue.requeueDead({ instanceId: "" }))).toBe(Code.InvalidArgument);
      expect(await codeOf(queue.requeueDead({ targetId: "t" } as never))).toBe(Code.InvalidArgument);
    });

    it("tells watchers about enqueued jobs", async () => {
      let woken = 0;
      const stop = queue.watch(() => woken++);
      await queue.enqueue([job("t", "k")]);
      for (let i = 0; i < 50 && woken === 0; i++) await sleep(20);
      expect(woken).toBeGreaterThan(0);
      stop();
    });
  });
}
