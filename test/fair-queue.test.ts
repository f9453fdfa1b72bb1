import { describe, expect, it } from "vitest";
import { createFairQueue, type FairQueue } from "../src/dispatch/fair-queue.js";

interface Item {
  readonly lane: string;
  readonly n: number;
  /** The group, default the lane's first letter. */
  readonly group?: string;
}

/** A queue whose items run until released, recording the order they start in. */
function harness(options: {
  maxRunning: number;
  maxRunningPerLane?: number;
  maxWaiting?: number;
  maxRunningPerGroup?: number;
  maxWaitingPerGroup?: number;
}) {
  const started: string[] = [];
  const release = new Map<string, () => void>();
  let settled = 0;
  const queue: FairQueue<Item> = createFairQueue<Item>({
    maxRunning: options.maxRunning,
    maxRunningPerLane: options.maxRunningPerLane,
    maxWaiting: options.maxWaiting ?? 1000,
    maxRunningPerGroup: options.maxRunningPerGroup,
    maxWaitingPerGroup: options.maxWaitingPerGroup,
    groupOf: (item) => item.group ?? item.lane,
    laneOf: (item) => item.lane,
    run: (item) =>
      new Promise<void>((resolve) => {
        const name = `${item.lane}${item.n}`;
        started.push(name);
        release.set(name, resolve);
      }),
    onSettled: () => settled++,
  });
  const finish = async (name: string) => {
    const done = release.get(name);
    if (done === undefined) throw new Error(`${name} is not running`);
    release.delete(name);
    done();
    // The queue refills the slot when the run's promise settles.
    await new Promise((resolve) => setImmediate(resolve));
  };
  const offer = (lane: string, count: number, group?: string) => {
    for (let n = 1; n <= count; n++) expect(queue.offer({ lane, n, group })).toBe("queued");
  };
  return { queue, started, finish, offer, settled: () => settled, running: () => [...release.keys()] };
}

describe("createFairQueue", () => {
  it("starts nothing until pumped, then fills the free slots", () => {
    const h = harness({ maxRunning: 2 });
    h.offer("a", 3);
    expect(h.started).toEqual([]);
    expect(h.queue.waiting).toBe(3);
    h.queue.pump();
    expect(h.started).toEqual(["a1", "a2"]);
    expect(h.queue.running).toBe(2);
    expect(h.queue.waiting).toBe(1);
  });

  it("keeps each lane's order and lets the lanes take turns", async () => {
    const h = harness({ maxRunning: 1 });
    h.offer("a", 4);
    h.offer("b", 2);
    h.offer("c", 1);
    h.queue.pump();
    for (let i = 0; i < 7; i++) await h.finish(h.running()[0]!);
    expect(h.started).toEqual(["a1", "b1", "c1", "a2", "b2", "a3", "a4"]);
    expect(h.queue.running).toBe(0);
    expect(h.queue.waiting).toBe(0);
    expect(h.settled()).toBe(7);
  });

  it("gives a lane whose items hang no more than its share: the other lanes keep moving", async () => {
    const h = harness({ maxRunning: 4, maxRunningPerLane: 2 });
    h.offer("slow", 10);
    h.offer("fast", 3);
    h.queue.pump();
    expect(h.running().sort()).toEqual(["fast1", "fast2", "slow1", "slow2"]);
    // The fast lane's calls finish; its last one starts, the slow lane stays at two.
    await h.finish("fast1");
    await h.finish("fast2");
    expect(h.running().sort()).toEqual(["fast3", "slow1", "slow2"]);
    await h.finish("fast3");
    expect(h.running().sort()).toEqual(["slow1", "slow2"]);
    expect(h.queue.waiting).toBe(8);
    // A slow call finishing frees a slot for the next slow call, in order.
    await h.finish("slow1");
    expect(h.running().sort()).toEqual(["slow2", "slow3"]);
  });

  it("refuses items beyond maxWaiting and takes them again once some have started", async () => {
    const h = harness({ maxRunning: 1, maxWaiting: 2 });
    expect(h.queue.offer({ lane: "a", n: 1 })).toBe("queued");
    expect(h.queue.offer({ lane: "b", n: 1 })).toBe("queued");
    expect(h.queue.offer({ lane: "a", n: 2 })).toBe("full");
    expect(h.queue.waiting).toBe(2);
    h.queue.pump();
    expect(h.queue.offer({ lane: "a", n: 2 })).toBe("queued");
    expect(h.queue.offer({ lane: "a", n: 3 })).toBe("full");
    await h.finish("a1");
    await h.finish("b1");
    await h.finish("a2");
    expect(h.started).toEqual(["a1", "b1", "a2"]);
  });

  it("takes turns between groups first, then between the lanes of a group", async () => {
    const h = harness({ maxRunning: 1 });
    h.offer("x", 3, "A");
    h.offer("y", 1, "A");
    h.offer("z", 2, "B");
    h.queue.pump();
    for (let i = 0; i < 6; i++) await h.finish(h.running()[0]!);
    // A group with two lanes gets no more turns than a group with one.
    expect(h.started).toEqual(["x1", "z1", "y1", "z2", "x2", "x3"]);
    expect(h.settled()).toBe(6);
  });

  it("gives a group whose items hang no more than its share, and each of its lanes no more than theirs", async () => {
    const h = harness({ maxRunning: 4, maxRunningPerGroup: 3, maxRunningPerLane: 2 });
    h.offer("h1", 10, "hang");
    h.offer("h2", 10, "hang");
    h.offer("ok", 6, "healthy");
    h.queue.pump();
    const lanesRunning = () => {
      const counts: Record<string, number> = {};
      for (const name of h.running()) counts[name.slice(0, 2)] = (counts[name.slice(0, 2)] ?? 0) + 1;
      return counts;
    };
    // The healthy group's items finish, one after the other; the hanging ones never do.
    for (let done = 0; done < 6; done++) {
      const counts = lanesRunning();
      expect((counts.h1 ?? 0) + (counts.h2 ?? 0)).toBeLessThanOrEqual(3);
      expect(counts.h1 ?? 0).toBeLessThanOrEqual(2);
      expect(counts.h2 ?? 0).toBeLessThanOrEqual(2);
      const next = h.running().find((name) => name.startsWith("ok"));
      expect(next).toBeDefined();
      await h.finish(next!);
    }
    expect(h.started.filter((name) => name.startsWith("ok"))).toEqual(["ok1", "ok2", "ok3", "ok4", "ok5", "ok6"]);
    // The hanging group took the free slots up to its share: 3, both lanes moving.
    expect(lanesRunning()).toEqual({ h1: 2, h2: 1 });
    expect(h.queue.waiting).toBe(17);
  });

  it("refuses a group's items beyond its share of the waiting room, not the other groups'", async () => {
    const h = harness({ maxRunning: 1, maxWaiting: 4, maxWaitingPerGroup: 2 });
    expect(h.queue.offer({ lane: "a", n: 1, group: "A" })).toBe("queued");
    expect(h.queue.offer({ lane: "b", n: 1, group: "A" })).toBe("queued");
    expect(h.queue.offer({ lane: "a", n: 2, group: "A" })).toBe("group-full");
    expect(h.queue.offer({ lane: "c", n: 1, group: "B" })).toBe("queued");
    expect(h.queue.offer({ lane: "c", n: 2, group: "B" })).toBe("queued");
    expect(h.queue.offer({ lane: "d", n: 1, group: "C" })).toBe("full");
    h.queue.pump(); // a1 starts: A has room again
    expect(h.queue.offer({ lane: "a", n: 2, group: "A" })).toBe("queued");
    for (let i = 0; i < 5; i++) await h.finish(h.running()[0]!);
    expect(h.started).toEqual(["a1", "c1", "b1", "c2", "a2"]);
  });

  it("takes a lane up again after it ran empty", async () => {
    const h = harness({ maxRunning: 2 });
    h.offer("a", 1);
    h.queue.pump();
    await h.finish("a1");
    expect(h.queue.running).toBe(0);
    h.queue.offer({ lane: "a", n: 2 });
    h.queue.pump();
    expect(h.started).toEqual(["a1", "a2"]);
  });
});
