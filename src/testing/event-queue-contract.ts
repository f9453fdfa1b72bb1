// The contract every EventQueue implementation passes. A queue's test file calls
// describeEventQueueContract with a factory that returns a fresh, empty queue.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { EventQueue } from "../events/event-queue.js";
import { testJob as job } from "./support.js";
import { sleep } from "./support.js";

export interface EventQueueFixture {
  readonly queue: EventQueue;
  cleanup(): Promise<void>;
}

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
