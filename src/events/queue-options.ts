// Checks and helpers that every EventQueue implementation shares.
import { Code, ConnectError } from "@connectrpc/connect";
import type { ClaimOptions, DeadJobQuery, ListDeadOptions } from "./event-queue.js";

/**
 * instanceCap returns the most jobs of `instanceId` a claim with `options` may
 * lease: its entry of instanceLimits, else maxPerInstance, else Infinity.
 */
export function instanceCap(options: ClaimOptions, instanceId: string): number {
  return options.instanceLimits?.get(instanceId) ?? options.maxPerInstance ?? Number.POSITIVE_INFINITY;
}

/**
 * pickInTurns returns up to `limit` of `candidates` (sorted oldest first):
 * the oldest of every instance, then the second oldest of every instance, and
 * so on, each turn oldest first, no instance over its cap (see instanceCap).
 */
export function pickInTurns<T>(candidates: readonly T[], instanceOf: (c: T) => string, limit: number, options: ClaimOptions): T[] {
  if (!(limit > 0)) return [];
  if (options.maxPerInstance === undefined && (options.instanceLimits === undefined || options.instanceLimits.size === 0)) {
    return candidates.slice(0, limit);
  }
  const turns = new Map<string, number>();
  const ranked: { c: T; turn: number; at: number }[] = [];
  candidates.forEach((c, at) => {
    const instance = instanceOf(c);
    const turn = (turns.get(instance) ?? 0) + 1;
    turns.set(instance, turn);
    if (turn <= instanceCap(options, instance)) ranked.push({ c, turn, at });
  });
  ranked.sort((a, b) => a.turn - b.turn || a.at - b.at);
  return ranked.slice(0, limit).map((r) => r.c);
}

/**
 * validateListDeadOptions returns the instance (undefined for all) and the
 * limit (default 100) of listDead's argument, or throws Code.InvalidArgument
 * for a limit that is no non-negative integer.
 */
export function validateListDeadOptions(options: number | ListDeadOptions | undefined): { instanceId?: string; limit: number } {
  const { instanceId, limit = 100 } = typeof options === "number" ? { limit: options } : (options ?? {});
  if (!Number.isSafeInteger(limit) || limit < 0) {
    throw new ConnectError(`limit must be a non-negative integer, got ${String(limit)}`, Code.InvalidArgument);
  }
  if (instanceId !== undefined && typeof instanceId !== "string") {
    throw new ConnectError("instanceId must be a string", Code.InvalidArgument);
  }
  return { instanceId, limit };
}

/**
 * validateDeadJobQuery throws Code.InvalidArgument unless the query names an
 * instance (a string, "" for the default one) and at least one of id,
 * targetId and eventType, each a string.
 */
export function validateDeadJobQuery(query: DeadJobQuery): void {
  if (typeof query?.instanceId !== "string") {
    throw new ConnectError("instanceId must be a string (\"\" for the default instance)", Code.InvalidArgument);
  }
  for (const key of ["id", "targetId", "eventType"] as const) {
    if (query[key] !== undefined && typeof query[key] !== "string") {
      throw new ConnectError(`${key} must be a string`, Code.InvalidArgument);
    }
  }
  if (query.id === undefined && query.targetId === undefined && query.eventType === undefined) {
    throw new ConnectError("set at least one of id, targetId and eventType", Code.InvalidArgument);
  }
}
