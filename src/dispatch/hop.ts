import { Code, ConnectError } from "@connectrpc/connect";

/**
 * hopHeader is the header that marks target calls: `Actions-Hop: <n>`, where
 * n is the number of target calls that led to this one, 1 for a call made
 * while serving a client's request (or delivering an event). A request that
 * arrives with it was made by a target, directly or through a proxy that
 * forwards headers, and its own target calls carry n + 1.
 */
export const hopHeader = "actions-hop";

/**
 * defaultMaxHops is how many target calls deep a request may be and still run
 * executions: 1, so a request that a target call made is refused when
 * executions would run for it (see ActionsInterceptorOptions.maxHops).
 */
export const defaultMaxHops = 1;

/**
 * checkMaxHops returns the maxHops option of a component, default
 * defaultMaxHops (1), after checking that it is an integer from 1 to 1000
 * (hopsOf reads larger counts as Infinity, so more could never be reached);
 * Code.InvalidArgument otherwise. The interceptor, the function runner, the
 * event publisher and the event worker check their option with it.
 */
export function checkMaxHops(maxHops: number | undefined): number {
  const value = maxHops ?? defaultMaxHops;
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new ConnectError(`maxHops must be an integer from 1 to 1000, got ${String(value)}`, Code.InvalidArgument);
  }
  return value;
}

/**
 * hopsOf returns the hop count a request carries in hopHeader: 0 without the
 * header, the number for a decimal integer from 0 to 1000 (several values, as
 * "1, 2", count as the largest), and Infinity for anything else, so that a
 * malformed marker never makes a request look shallower than it is.
 */
export function hopsOf(header: Headers): number {
  const value = header.get(hopHeader);
  if (value === null) return 0;
  let hops = 0;
  for (const part of value.split(",")) {
    const text = part.trim();
    if (!/^\d{1,4}$/.test(text) || Number(text) > 1000) return Infinity;
    hops = Math.max(hops, Number(text));
  }
  return hops;
}
