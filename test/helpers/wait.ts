import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/** sleep resolves after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * waitFor polls `condition` every `intervalMs` (default 5 ms) until it holds,
 * and resolves how many milliseconds that took; it rejects once more than
 * `timeoutMs` have passed, naming `what` it waited for.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  intervalMs = 5,
): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await condition()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

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
