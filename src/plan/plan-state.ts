import { type ExecutionTarget, maxIncludeDepth } from "../execution.js";
import type { ActionSnapshot } from "../store/action-store.js";
import type { Target } from "../target.js";
import type { ExecutionMatch } from "./execution-plan.js";

/**
 * IdSet is the value of a reverse index: one ID, or a Set of several (most
 * targets and executions are listed by one execution, which then costs no Set).
 */
type IdSet = string | Set<string>;

/**
 * PlanState is the compiled, mutable state behind the ExecutionPlan of one
 * instance: the targets and execution lists as of the last update, reverse
 * indexes of the lists, and every execution's match. Internal to the plan
 * folder: plans read it, applyPlanChanges updates it in place.
 */
export interface PlanState {
  readonly targets: Map<string, Target>;
  readonly lists: Map<string, readonly ExecutionTarget[]>;
  /**
   * Execution ID -> the executions whose lists include it, and target ID ->
   * the executions whose lists name it. Built on the first update (see
   * indexed), so that a plan that never changes never pays for them.
   */
  readonly includers: Map<string, IdSet>;
  readonly users: Map<string, IdSet>;
  indexed: boolean;
  readonly matches: Map<string, ExecutionMatch>;
  /** Entries of all lists, and targets of all matches: for estimatePlanBytes. */
  listEntries: number;
  matchEntries: number;
}

const addId = (index: Map<string, IdSet>, key: string, id: string) => {
  const current = index.get(key);
  if (current === undefined) index.set(key, id);
  else if (typeof current === "string") {
    if (current !== id) index.set(key, new Set([current, id]));
  } else current.add(id);
};
const deleteId = (index: Map<string, IdSet>, key: string, id: string) => {
  const current = index.get(key);
  if (current === id) index.delete(key);
  else if (typeof current === "object") {
    current.delete(id);
    if (current.size === 1) index.set(key, current.values().next().value!);
  }
};
const idsOf = (index: Map<string, IdSet>, key: string): Iterable<string> => {
  const current = index.get(key);
  return current === undefined ? [] : typeof current === "string" ? [current] : current;
};

/**
 * setList replaces the list of execution `id` (undefined removes it) and
 * keeps the reverse indexes in step. It does not touch matches.
 */
function setList(state: PlanState, id: string, list: readonly ExecutionTarget[] | undefined): void {
  const previous = state.lists.get(id);
  if (previous !== undefined) {
    state.listEntries -= previous.length;
    if (state.indexed) unindex(state, id, previous);
  }
  if (list === undefined) {
    state.lists.delete(id);
    return;
  }
  state.lists.set(id, list);
  state.listEntries += list.length;
  if (state.indexed) index(state, id, list);
}

function index(state: PlanState, id: string, list: readonly ExecutionTarget[]): void {
  for (const entry of list) {
    if ("target" in entry) addId(state.users, entry.target, id);
    else addId(state.includers, entry.include, id);
  }
}

function unindex(state: PlanState, id: string, list: readonly ExecutionTarget[]): void {
  for (const entry of list) {
    if ("target" in entry) deleteId(state.users, entry.target, id);
    else deleteId(state.includers, entry.include, id);
  }
}

/**
 * expand resolves the list of execution `id`: targets in order, includes
 * expanded in place up to maxIncludeDepth levels, each target once, unknown
 * targets and include cycles skipped.
 */
function expand(state: PlanState, id: string, list: readonly ExecutionTarget[]): ExecutionMatch {
  const out: Target[] = [];
  let includes = false;
  for (const entry of list) {
    if ("include" in entry) {
      includes = true;
      break;
    }
    // Without includes the store keeps entries unique, so nothing repeats.
    const target = state.targets.get(entry.target);
    if (target !== undefined) out.push(target);
  }
  if (includes) {
    out.length = 0;
    walk(state, id, 0, [id], out, new Set());
  }
  return Object.freeze({ executionId: id, targets: Object.freeze(out) });
}

/**
 * walk appends the targets of execution `from`'s list to `out`, includes
 * expanded (see expand). With `vias`, it also appends, for each target it
 * appends, the path that reached it: the execution IDs from the first
 * execution down to the one whose list names the target.
 */
function walk(
  state: PlanState,
  from: string,
  depth: number,
  path: string[],
  out: Target[],
  seen: Set<string>,
  vias?: (readonly string[])[],
): void {
  for (const entry of state.lists.get(from) ?? []) {
    if ("target" in entry) {
      const target = state.targets.get(entry.target);
      if (target !== undefined && !seen.has(target.id)) {
        seen.add(target.id);
        out.push(target);
        vias?.push(Object.freeze(path));
      }
    } else if (depth < maxIncludeDepth && !path.includes(entry.include)) {
      walk(state, entry.include, depth + 1, [...path, entry.include], out, seen, vias);
    }
  }
}

/**
 * ResolvedTarget is a target of an execution's match and the path that
 * reaches it (see resolveWithPaths).
 */
export interface ResolvedTarget {
  readonly target: Target;
  /** The execution IDs from the execution down to the one whose list names the target. */
  readonly via: readonly string[];
}

/**
 * resolveWithPaths resolves the list of execution `id` as its match does
 * (the same walk: targets in order, includes expanded in place up to
 * maxIncludeDepth levels, each target once, unknown targets and include
 * cycles skipped), and tells for each target the includes that reach it.
 * Empty when the execution does not exist. For explanations: the match
 * itself is computed without the paths.
 */
export function resolveWithPaths(state: PlanState, id: string): ResolvedTarget[] {
  if (!state.lists.has(id)) return [];
  const targets: Target[] = [];
  const vias: (readonly string[])[] = [];
  walk(state, id, 0, [id], targets, new Set(), vias);
  return targets.map((target, i) => Object.freeze({ target, via: vias[i]! }));
}

/** recompute sets the match of execution `id` from its list, or removes it. */
function recompute(state: PlanState, id: string): void {
  const previous = state.matches.get(id);
  if (previous !== undefined) state.matchEntries -= previous.targets.length;
  if (!state.lists.has(id)) {
    state.matches.delete(id);
    return;
  }
  const match = expand(state, id, state.lists.get(id)!);
  state.matchEntries += match.targets.length;
  state.matches.set(id, match);
}

/**
 * buildPlanState compiles a snapshot of one instance: every execution's
 * match, and the indexes that let applyPlanChanges update it later.
 */
export function buildPlanState(snapshot: ActionSnapshot): PlanState {
  const state: PlanState = {
    targets: new Map(),
    lists: new Map(),
    includers: new Map(),
    users: new Map(),
    matches: new Map(),
    indexed: false,
    listEntries: 0,
    matchEntries: 0,
  };
  for (const t of snapshot.targets) state.targets.set(t.id, t);
  for (const e of snapshot.executions) {
    state.lists.set(e.id, e.targets);
    state.listEntries += e.targets.length;
  }
  for (const [id, list] of state.lists) {
    const match = expand(state, id, list);
    state.matchEntries += match.targets.length;
    state.matches.set(id, match);
  }
  return state;
}

/**
 * applyPlanChanges brings `state` up to date with a change that named
 * `targetIds` and `executionIds`, given their current versions `loaded`
 * (InstanceStore.load: those not in it were deleted). Only the affected
 * matches are computed again: those of the changed executions, of the
 * executions that name a changed target, and of every execution that
 * includes one of these, transitively. The result equals buildPlanState of
 * the whole instance as of the load, provided every change since the state
 * was built was applied. Returns how many matches were computed.
 */
export function applyPlanChanges(
  state: PlanState,
  targetIds: Iterable<string>,
  executionIds: Iterable<string>,
  loaded: ActionSnapshot,
): number {
  if (!state.indexed) {
    state.indexed = true;
    for (const [id, list] of state.lists) index(state, id, list);
  }
  const affected = new Set<string>();
  const targets = new Map(loaded.targets.map((t) => [t.id, t] as const));
  const executions = new Map(loaded.executions.map((e) => [e.id, e] as const));
  for (const id of targetIds) {
    const target = targets.get(id);
    if (target === undefined) state.targets.delete(id);
    else state.targets.set(id, target);
    for (const user of idsOf(state.users, id)) affected.add(user);
  }
  for (const id of executionIds) {
    setList(state, id, executions.get(id)?.targets);
    affected.add(id);
  }
  // Executions that include an affected one are affected too. A Set grows
  // while it is iterated, so this walks up the include graph breadth first;
  // it ends even on a stored cycle, since nothing is added twice.
  for (const id of affected) {
    for (const includer of idsOf(state.includers, id)) affected.add(includer);
  }
  for (const id of affected) recompute(state, id);
  return affected.size;
}

/**
 * estimatePlanBytes estimates the heap a PlanState (and its plan) holds, from
 * its counts: measured on Node.js 20 with targets as the stores return them
 * (see BENCHMARKS.md, "Plans in memory"). An estimate for eviction budgets,
 * not an exact size.
 */
export function estimatePlanBytes(state: PlanState): number {
  return (
    planBaseBytes +
    state.targets.size * bytesPerTarget +
    state.lists.size * bytesPerExecution +
    state.listEntries * (state.indexed ? bytesPerListEntry + bytesPerIndexEntry : bytesPerListEntry) +
    state.matchEntries * bytesPerMatchEntry
  );
}

const planBaseBytes = 2_048;
const bytesPerTarget = 560;
const bytesPerExecution = 420;
const bytesPerListEntry = 120;
const bytesPerMatchEntry = 8;
const bytesPerIndexEntry = 60;
