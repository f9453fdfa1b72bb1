import { Code, ConnectError } from "@connectrpc/connect";
import { type Condition, executionTypeOf } from "./condition.js";

/**
 * ExecutionTarget is one entry of an execution's ordered list: a target ID,
 * or the ID of another execution whose targets run at that position (an include).
 */
export type ExecutionTarget = { readonly target: string } | { readonly include: string };

/**
 * Execution binds a condition to an ordered list of targets and includes.
 */
export interface Execution {
  /** The condition's ID, see executionId. */
  readonly id: string;
  readonly condition: Condition;
  readonly targets: readonly ExecutionTarget[];
  readonly creationDate: Date;
  readonly changeDate: Date;
}

/**
 * maxIncludeDepth is how many includes may be nested below an execution: 3, as in ZITADEL.
 */
export const maxIncludeDepth = 3;

/**
 * validateExecutionTargets checks the shape of an execution's list: every entry
 * has exactly one non-empty `target` or `include`, no entry repeats and an
 * include is of the same execution type and not the execution itself. Throws a
 * ConnectError with Code.InvalidArgument. Existence is checked by the store.
 */
export function validateExecutionTargets(id: string, targets: readonly ExecutionTarget[]): ExecutionTarget[] {
  if (!Array.isArray(targets)) {
    throw new ConnectError("execution targets must be a list", Code.InvalidArgument);
  }
  const seen = new Set<string>();
  const type = executionTypeOf(id);
  return targets.map((entry, i) => {
    const e = entry as Partial<Record<"target" | "include", unknown>> | null;
    const isTarget = typeof e?.target === "string" && e.target !== "";
    const isInclude = typeof e?.include === "string" && e.include !== "";
    if (isTarget === isInclude || (e?.target !== undefined && e?.include !== undefined)) {
      throw new ConnectError(`execution entry ${i} must have exactly one of target or include`, Code.InvalidArgument);
    }
    const normalized: ExecutionTarget = isTarget ? { target: e!.target as string } : { include: e!.include as string };
    const key = isTarget ? `t:${e!.target as string}` : `i:${e!.include as string}`;
    if (seen.has(key)) {
      throw new ConnectError(`execution entry ${i} repeats ${isTarget ? "target" : "include"} "${key.slice(2)}"`, Code.InvalidArgument);
    }
    seen.add(key);
    if ("include" in normalized) {
      if (normalized.include === id) {
        throw new ConnectError(`execution "${id}" cannot include itself`, Code.InvalidArgument);
      }
      if (executionTypeOf(normalized.include) !== type) {
        throw new ConnectError(
          `execution "${id}" can only include ${type} executions, not "${normalized.include}"`,
          Code.InvalidArgument,
        );
      }
    }
    return normalized;
  });
}

/**
 * checkIncludeGraph verifies that, once the execution `id` has the list
 * `targets`, no include chain forms a cycle and none is longer than
 * maxIncludeDepth, counting both the includes below `id` and the executions
 * that include `id`. `lookup` returns another execution's stored list and
 * `includersOf` the IDs of the executions whose lists include it. Throws a
 * ConnectError with Code.NotFound for an include of a missing execution and
 * Code.InvalidArgument for a cycle or a chain that is too deep.
 */
export function checkIncludeGraph(
  id: string,
  targets: readonly ExecutionTarget[],
  lookup: (id: string) => readonly ExecutionTarget[] | undefined,
  includersOf: (id: string) => Iterable<string>,
): void {
  for (const entry of targets) {
    if ("include" in entry && lookup(entry.include) === undefined) {
      throw new ConnectError(`included execution "${entry.include}" does not exist`, Code.NotFound);
    }
  }
  const listOf = (x: string) => (x === id ? targets : lookup(x)) ?? [];
  const depthBelow = (from: string, path: readonly string[]): number => {
    let deepest = 0;
    for (const entry of listOf(from)) {
      if (!("include" in entry)) continue;
      if (path.includes(entry.include)) {
        throw new ConnectError(`include cycle: ${[...path, entry.include].join(" -> ")}`, Code.InvalidArgument);
      }
      deepest = Math.max(deepest, 1 + depthBelow(entry.include, [...path, entry.include]));
    }
    return deepest;
  };
  // The graph without `id`'s new list has no cycle, so walking up terminates.
  const depthAbove = (to: string, seen: Set<string>): number => {
    let deepest = 0;
    for (const parent of includersOf(to)) {
      if (parent === id || seen.has(parent)) continue;
      seen.add(parent);
      deepest = Math.max(deepest, 1 + depthAbove(parent, seen));
      seen.delete(parent);
    }
    return deepest;
  };
  const depth = depthBelow(id, [id]) + depthAbove(id, new Set([id]));
  if (depth > maxIncludeDepth) {
    throw new ConnectError(
      `execution "${id}" would be part of an include chain ${depth} levels deep, at most ${maxIncludeDepth} are allowed`,
      Code.InvalidArgument,
    );
  }
}
