import { type ActionStore, defaultInstanceId, type StoreChange } from "../store/action-store.js";
import { compileExecutionPlan, type ExecutionPlan } from "./execution-plan.js";

/**
 * ExecutionPlanner keeps the ExecutionPlan of every instance of a store current.
 */
export interface ExecutionPlanner {
  /**
   * plan returns the plan of an instance (default defaultInstanceId) compiled
   * from the store's latest state: the plan itself when nothing of the
   * instance changed since it was compiled (no allocation, no I/O), else a
   * promise of a newly compiled one. A change the store announced before
   * this call is always in the result. An instance's plan is compiled on its
   * first use.
   */
  plan(instanceId?: string): ExecutionPlan | Promise<ExecutionPlan>;
  /** close stops watching the store. */
  close(): void;
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
}

/** The plan of one instance and what it was compiled from. */
interface InstancePlan {
  /** Bumped on every change of the instance the store announces. */
  version: number;
  /** The version and store-wide epoch `current` was compiled at. */
  compiledVersion: number;
  compiledEpoch: number;
  current: ExecutionPlan | undefined;
  loading: Promise<void> | undefined;
}

/**
 * createExecutionPlanner watches `store` and recompiles the plan of an
 * instance lazily, on the first plan() after a change of that instance;
 * concurrent callers share one compilation.
 */
export function createExecutionPlanner(store: ActionStore, options: ExecutionPlannerOptions = {}): ExecutionPlanner {
  const plans = new Map<string, InstancePlan>();
  // Bumped when any instance may have changed: every plan is stale then.
  let epoch = 0;
  const stop = store.watch((change: StoreChange) => {
    if (change.instanceId === undefined) {
      epoch++;
      return;
    }
    const p = plans.get(change.instanceId);
    if (p !== undefined) p.version++;
  });

  const isFresh = (p: InstancePlan) => p.compiledVersion === p.version && p.compiledEpoch === epoch && p.current !== undefined;

  const load = (instanceId: string, p: InstancePlan): Promise<void> => {
    p.loading ??= (async () => {
      try {
        const version = p.version;
        const seenEpoch = epoch;
        const snapshot = await store.forInstance(instanceId).snapshot();
        p.current = compileExecutionPlan(snapshot);
        p.compiledVersion = version;
        p.compiledEpoch = seenEpoch;
      } finally {
        p.loading = undefined;
      }
    })();
    return p.loading;
  };
  const fresh = async (instanceId: string, p: InstancePlan): Promise<ExecutionPlan> => {
    // A load that started before the latest change does not count: loop until
    // a load started after it has finished.
    while (!isFresh(p)) {
      try {
        await load(instanceId, p);
      } catch (error) {
        if (p.current === undefined) {
          plans.delete(instanceId); // nothing to keep: try afresh next time
          throw error;
        }
        options.onStaleError?.(error);
        return p.current;
      }
    }
    return p.current!;
  };

  return {
    plan(instanceId = defaultInstanceId) {
      let p = plans.get(instanceId);
      if (p === undefined) {
        p = { version: 0, compiledVersion: -1, compiledEpoch: -1, current: undefined, loading: undefined };
        plans.set(instanceId, p);
      } else if (isFresh(p)) {
        return p.current!;
      }
      return fresh(instanceId, p);
    },
    close: stop,
  };
}
