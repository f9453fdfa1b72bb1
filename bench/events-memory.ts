// Events bench, memory: resident memory and JS heap per event queued in the memory queue.
// Run with --expose-gc; prints one JSON line and exits.
import { createMemoryEventQueue } from "../src/events/memory-event-queue.js";
import type { EventJob } from "../src/events/event-queue.js";
import { encodeEventPayload } from "../src/events/action-event.js";
import { benchUserEvent } from "./bench-event.js";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --expose-gc");
const events = 100_000;
const queue = createMemoryEventQueue();
const job = (i: number): EventJob => ({
  instanceId: "bench-instance",
  targetId: "297421523617239040",
  executionId: "event/user.human.added",
  eventType: "user.human.added",
  orderingKey: `bench-instance/user/${i}`,
  // Each payload a string of its own, as the publisher makes them.
  body: encodeEventPayload(benchUserEvent(String(300_000_000_000_000_000n + BigInt(i)), i)),
  createdAt: new Date(),
  timeoutMs: 5000,
});
const measure = () => {
  gc();
  gc();
  return { rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed };
};
const bodyBytes = Buffer.byteLength(job(0).body);
const before = measure();
for (let i = 0; i < events; i += 1000) await queue.enqueue(Array.from({ length: 1000 }, (_, k) => job(i + k)));
const after = measure();
if ((await queue.pending()) !== events) throw new Error("not all queued");
process.stdout.write(
  `${JSON.stringify({ events, rssBytes: (after.rss - before.rss) / events, heapBytes: (after.heap - before.heap) / events, bodyBytes })}\n`,
);
await queue.close();
