import { sleep } from "../../src/testing/support.js";

export { codeOf, sleep } from "../../src/testing/support.js";

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

