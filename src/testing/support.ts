import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import type { EventJob } from "../events/event-queue.js";

/** sleep resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * codeOf resolves "resolved" when `p` resolves, and the code of the
 * ConnectError it rejects with otherwise; a rejection with anything else
 * fails the test.
 */
export async function codeOf(p: Promise<unknown>): Promise<Code | "resolved"> {
  try {
    await p;
    return "resolved";
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectError);
    return (e as ConnectError).code;
  }
}

let jobCounter = 0;

/**
 * testJob returns an EventJob for `targetId` and `orderingKey` with a body
 * unique in this process ({"n": <counter>}), the default instance (""),
 * createdAt now and a timeoutMs of 60 s; `extra` overrides any field.
 */
export const testJob = (targetId: string, orderingKey: string, extra: Partial<EventJob> = {}): EventJob => ({
  instanceId: "",
  targetId,
  executionId: "event/user.human.*",
  eventType: "user.human.added",
  orderingKey,
  body: JSON.stringify({ n: ++jobCounter }),
  createdAt: new Date(),
  timeoutMs: 60_000,
  ...extra,
});
