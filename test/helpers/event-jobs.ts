import type { EventJob } from "../../src/event-queue.js";

let n = 0;

/**
 * job returns an EventJob for `targetId` and `orderingKey` with a body unique
 * in this process ({"n": <counter>}), createdAt now and a timeoutMs of 60 s;
 * `extra` overrides any field.
 */
export const job = (targetId: string, orderingKey: string, extra: Partial<EventJob> = {}): EventJob => ({
  targetId,
  executionId: "event/user.human.*",
  eventType: "user.human.added",
  orderingKey,
  body: JSON.stringify({ n: ++n }),
  createdAt: new Date(),
  timeoutMs: 60_000,
  ...extra,
});
