import type { ActionStore } from "../store/action-store.js";
import { compileExecutionPlan, type ExecutionPlan } from "./execution-plan.js";

/**
 * ExecutionPlanner keeps the ExecutionPlan of a store current.
 */
export interface ExecutionPlanner {
  /**
   * plan returns the plan compiled from the store's latest state: the plan
   * itself when nothing changed since it was compiled (no allocation, no I/O),
   * else a promise of a newly compiled one. A change the store announced
   * before this call is always in the result.
   */
  plan(): ExecutionPlan | Promise<ExecutionPlan>;
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

/**
 * createExecutionPlanner watches `store` and recompiles its plan lazily, on
 * the first plan() after a change; concurrent callers share one compilation.
 */
export function createExecutionPlanner(store: ActionStore, options: ExecutionPlannerOptions = {}): ExecutionPlanner {
  let version = 0; // bumped on every change the store announces
  let compiledVersion = -1; // the version `current` was compiled at
  let current: ExecutionPlan | undefined;
  let loading: Promise<void> | undefined;
  const stop = store.watch(() => {
    version++;
  });

  const load = (): Promise<void> => {
    loading ??= (async () => {
      try {
        const seen = version;
        const snapshot = await store.snapshot();
        current = compileExecutionPlan(snapshot);
        compiledVersion = seen;
      } finally {
        loading = undefined;
      }
    })();
    return loading;
  };
  const fresh = async (): Promise<ExecutionPlan> => {
    // A load that started before the latest change does not count: loop until
    // a load started after it has finished.
    while (compiledVersion !== version || current === undefined) {
      try {
        await load();
      } catch (error) {
        if (current === undefined) throw error;
        options.onStaleError?.(error);
        return current;
      }
    }
    return current;
  };

  return {
    plan() {
      if (compiledVersion === version && current !== undefined) {
        return current;
      }
      return fresh();
    },
    close: stop,
  };
}
