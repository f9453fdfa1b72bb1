import { type ActionStore, defaultInstanceId, type StoreChange } from "../store/action-store.js";
import { type ExecutionPlan, planOf } from "./execution-plan.js";
import { applyPlanChanges, buildPlanState, estimatePlanBytes, type PlanState } from "./plan-state.js";

/**
 * ExecutionPlanner keeps the ExecutionPlan of every instance of a store current.
 */
export interface ExecutionPlanner {
  /**
   * plan returns the plan of an instance (default defaultInstanceId) compiled
   * from the store's latest state: the plan itself when nothing of the
   * instance changed since it was compiled (no allocation, no I/O), else a
   * promise of an updated one. A change the store announced before this call
   * is always in the result. An instance's plan is compiled on its first use
   * (and again after it was evicted); after a change that names what it
   * changed, only that is read and only the affected executions are resolved
   * again.
   */
  plan(instanceId?: string): ExecutionPlan | Promise<ExecutionPlan>;
  /** stats returns what the planner holds and has done so far. */
  stats(): ExecutionPlannerStats;
  /** close stops watching the store. */
  close(): void;
}

/**
 * ExecutionPlannerStats are the counters of an ExecutionPlanner, for metrics
 * and tests.
 */
export interface ExecutionPlannerStats {
  /** Compiled plans held now. */
  readonly plans: number;
  /** Estimated heap of the plans held now, in bytes (see maxPlanBytes). */
  readonly estimatedBytes: number;
  /** Full compilations so far: first uses, recompiles after an eviction, changes of unknown extent. */
  readonly compiles: number;
  /** Incremental updates so far: changes applied by reading only what they named. */
  readonly updates: number;
  /** Plans evicted so far to stay within maxPlans and maxPlanBytes. */
  readonly evictions: number;
}

/**
 * ExecutionPlannerOptions configures createExecutionPlanner.
 */
export interface ExecutionPlannerOptions {
  /**
   * onStaleError is called when the store cannot be read and the previous
   * plan is used instead (availability over freshness while the store is
   * down). Default: nothing. Without a previous plan the error is thrown.
   */
  readonly onStaleError?: (error: unknown) => void;
  /**
   * maxPlans is how many instances' plans are kept at most; beyond it, the
   * least recently used are evicted and compiled again on their next use.
   * Default: no limit (maxPlanBytes still applies).
   */
  readonly maxPlans?: number;
  /**
   * maxPlanBytes bounds the estimated heap of the plans kept (about 1 KiB
   * per target and per execution); beyond it, the least recently used plans
   * are evicted. The most recently used plan is always kept, however large.
   * Default 256 MiB.
   */
  readonly maxPlanBytes?: number;
}

/** defaultMaxPlanBytes is the default of ExecutionPlannerOptions.maxPlanBytes, 256 MiB. */
export const defaultMaxPlanBytes = 256 * 1024 * 1024;

/**
 * Changes named by more IDs than this (and than half the instance) are not
 * applied one by one: the instance is compiled afresh.
 */
const maxPendingIds = 1_000;

/** The plan of one instance, its compiled state, and what changed since. */
interface Entry {
  readonly instanceId: string;
  /** The plan callers get; undefined until the first compilation. */
  plan: ExecutionPlan | undefined;
  state: PlanState | undefined;
  /** No change arrived since the plan was loaded: plan() may return it as it is. */
  fresh: boolean;
  /** A change arrived since the last load started (always true before the first). */
  dirty: boolean;
  /** The next load must read the whole instance. */
  full: boolean;
  /** IDs named by changes since the last load started (when not full). */
  targetIds: Set<string> | undefined;
  executionIds: Set<string> | undefined;
  loading: Promise<void> | undefined;
  /** estimatePlanBytes of the state, as counted in the planner's total. */
  bytes: number;
  /** Counted among the plans held (it has a plan and was not evicted). */
  held: boolean;
  evicted: boolean;
  /** When plan() last returned it, in ticks of the planner's clock: for LRU eviction. */
  used: number;
}

/**
 * createExecutionPlanner watches `store` and keeps one plan per instance,
 * compiled on the instance's first use. A change the store announces marks
 * the instance's plan stale; the first plan() after it reads what the change
 * named (InstanceStore.load) and resolves again only the executions it
 * affects, or reads the whole instance when the change does not say what it
 * touched (or touched too much). Concurrent callers share one load; changes
 * of one instance never touch another's plan. Plans beyond maxPlans or
 * maxPlanBytes are evicted, least recently used first.
 */
export function createExecutionPlanner(store: ActionStore, options: ExecutionPlannerOptions = {}): ExecutionPlanner {
  const maxPlans = options.maxPlans ?? Infinity;
  const maxPlanBytes = options.maxPlanBytes ?? defaultMaxPlanBytes;
  if (!(maxPlans >= 1) || !(maxPlanBytes >= 0)) {
    throw new RangeError("createExecutionPlanner: maxPlans must be at least 1 and maxPlanBytes at least 0");
  }
  const entries = new Map<string, Entry>();
  // A use costs one write (entry.used = ++clock); eviction, which only
  // follows a compilation, looks for the least recently used.
  let clock = 0;
  let heldCount = 0;
  let totalBytes = 0;
  let compiles = 0;
  let updates = 0;
  let evictions = 0;

  /** evict drops the least recently used plans, never `keep`, until the plans fit. */
  const evict = (keep: Entry) => {
    while (heldCount > maxPlans || totalBytes > maxPlanBytes) {
      let victim: Entry | undefined;
      for (const e of entries.values()) {
        if (e.held && e !== keep && (victim === undefined || e.used < victim.used)) victim = e;
      }
      if (victim === undefined) return;
      victim.held = false;
      victim.evicted = true;
      heldCount--;
      totalBytes -= victim.bytes;
      entries.delete(victim.instanceId);
      evictions++;
    }
  };
  /** account counts a freshly loaded entry as the most recently used, and evicts what no longer fits. */
  const account = (e: Entry) => {
    if (e.evicted) return;
    const bytes = estimatePlanBytes(e.state!);
    totalBytes += bytes - e.bytes;
    e.bytes = bytes;
    e.used = ++clock;
    if (!e.held) {
      e.held = true;
      heldCount++;
    }
    evict(e);
  };

  const markFull = (e: Entry) => {
    e.fresh = false;
    e.dirty = true;
    e.full = true;
    e.targetIds = e.executionIds = undefined;
  };
  const stop = store.watch((change: StoreChange) => {
    if (change.instanceId === undefined) {
      for (const e of entries.values()) markFull(e);
      return;
    }
    const e = entries.get(change.instanceId);
    if (e === undefined) return;
    e.fresh = false;
    e.dirty = true;
    if (e.full) return;
    if (change.targetIds === undefined || change.executionIds === undefined) {
      markFull(e);
      return;
    }
    const targetIds = (e.targetIds ??= new Set());
    const executionIds = (e.executionIds ??= new Set());
    for (const id of change.targetIds) targetIds.add(id);
    for (const id of change.executionIds) executionIds.add(id);
    const pending = targetIds.size + executionIds.size;
    const size = e.state === undefined ? 0 : e.state.targets.size + e.state.lists.size;
    if (pending > maxPendingIds && pending * 2 > size) markFull(e);
  });

  // The load in flight is cleared once it settles, never synchronously: a
  // load with nothing to read completes without waiting.
  const load = (e: Entry): Promise<void> =>
    (e.loading ??= reload(e).finally(() => {
      e.loading = undefined;
    }));
  const reload = async (e: Entry): Promise<void> => {
    const full = e.full || e.state === undefined;
    const targetIds = e.targetIds ?? new Set<string>();
    const executionIds = e.executionIds ?? new Set<string>();
    // Changes from here on are for the next load.
    e.dirty = false;
    e.full = false;
    e.targetIds = e.executionIds = undefined;
    try {
      const view = store.forInstance(e.instanceId);
      if (full) {
        e.state = buildPlanState(await view.snapshot());
        compiles++;
        e.plan = planOf(e.state);
      } else if (targetIds.size > 0 || executionIds.size > 0) {
        const loaded = await view.load({ targetIds: [...targetIds], executionIds: [...executionIds] });
        applyPlanChanges(e.state!, targetIds, executionIds, loaded);
        updates++;
        e.plan = planOf(e.state!);
      }
      if (!e.dirty) e.fresh = true;
      account(e);
    } catch (error) {
      // What this load was to read is read by the next one.
      e.dirty = true;
      if (full) markFull(e);
      else if (!e.full) {
        for (const id of targetIds) (e.targetIds ??= new Set()).add(id);
        for (const id of executionIds) (e.executionIds ??= new Set()).add(id);
      }
      throw error;
    }
  };

  const refresh = async (instanceId: string, existing: Entry | undefined): Promise<ExecutionPlan> => {
    let e = existing;
    if (e === undefined) {
      e = {
        instanceId,
        plan: undefined,
        state: undefined,
        fresh: false,
        dirty: true,
        full: true,
        targetIds: undefined,
        executionIds: undefined,
        loading: undefined,
        bytes: 0,
        held: false,
        evicted: false,
        used: 0,
      };
      entries.set(instanceId, e);
    }
    // A load that started before the latest change does not count: loop until
    // a load started after it has finished.
    while (!e.fresh) {
      try {
        await (e.loading ?? load(e));
      } catch (error) {
        if (e.plan === undefined) {
          if (entries.get(instanceId) === e) entries.delete(instanceId); // nothing to keep: try afresh next time
          throw error;
        }
        options.onStaleError?.(error);
        return e.plan;
      }
    }
    return e.plan!;
  };

  return {
    plan(instanceId = defaultInstanceId) {
      const e = entries.get(instanceId);
      if (e !== undefined && e.fresh) {
        e.used = ++clock;
        return e.plan!;
      }
      return refresh(instanceId, e);
    },
    stats() {
      return { plans: heldCount, estimatedBytes: totalBytes, compiles, updates, evictions };
    },
    close: stop,
  };
}
