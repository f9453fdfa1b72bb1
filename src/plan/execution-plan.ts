import type { ActionSnapshot } from "../store/action-store.js";
import type { Target } from "../target.js";
import { buildPlanState, type PlanState } from "./plan-state.js";

/**
 * ExecutionMatch is the execution chosen for a trigger: its ID (the ID of the
 * best-matching condition) and its targets, includes resolved, in order.
 */
export interface ExecutionMatch {
  readonly executionId: string;
  readonly targets: readonly Target[];
}

/**
 * MethodMatches are the executions that run around one unary method.
 */
export interface MethodMatches {
  readonly request: ExecutionMatch | undefined;
  readonly response: ExecutionMatch | undefined;
}

/**
 * ExecutionPlan answers "which targets run" from a snapshot compiled once, in
 * time independent of how many targets and executions exist.
 */
export interface ExecutionPlan {
  /**
   * forMethod returns the best matches for a full method name
   * ("/pkg.Service/Method"): the method's execution, else its service's, else
   * the type's `all` execution. Results are memoized per method.
   */
  forMethod(fullMethod: string): MethodMatches;
  /**
   * forEvent returns the best match for an event type: the event's execution,
   * else the longest matching group ("user.human.*" before "user.*"), else
   * the `all` event execution.
   */
  forEvent(eventType: string): ExecutionMatch | undefined;
  /** forFunction returns the execution of a function name. */
  forFunction(name: string): ExecutionMatch | undefined;
  /** byId returns the execution with this ID, includes resolved. */
  byId(executionId: string): ExecutionMatch | undefined;
  /** target returns the target with this ID as of the snapshot. */
  target(targetId: string): Target | undefined;
}

/**
 * compileExecutionPlan resolves every execution's list (targets in order,
 * includes expanded in place up to maxIncludeDepth levels, each target once,
 * unknown targets and include cycles skipped) into an ExecutionPlan.
 */
export function compileExecutionPlan(snapshot: ActionSnapshot): ExecutionPlan {
  return planOf(buildPlanState(snapshot));
}

/**
 * planOf returns an ExecutionPlan that answers from `state`, with a memo of
 * its own. The planner makes a new one after each update of the state, so
 * that no memoized answer outlives a change; a plan that has been replaced
 * may answer from later state than its memo.
 */
export function planOf(state: PlanState): ExecutionPlan {
  const { matches, targets } = state;
  const bestForMethod = (type: "request" | "response", fullMethod: string): ExecutionMatch | undefined => {
    const exact = matches.get(type + fullMethod);
    if (exact !== undefined) return exact;
    const serviceEnd = fullMethod.lastIndexOf("/");
    if (serviceEnd > 0) {
      const service = matches.get(type + fullMethod.slice(0, serviceEnd));
      if (service !== undefined) return service;
    }
    return matches.get(type);
  };
  const methodMemo = new Map<string, MethodMatches>();

  return {
    forMethod(fullMethod) {
      let m = methodMemo.get(fullMethod);
      if (m === undefined) {
        const request = bestForMethod("request", fullMethod);
        const response = bestForMethod("response", fullMethod);
        m = request === undefined && response === undefined ? noMatches : Object.freeze({ request, response });
        methodMemo.set(fullMethod, m);
      }
      return m;
    },
    forEvent(eventType) {
      const exact = matches.get(`event/${eventType}`);
      if (exact !== undefined) return exact;
      for (let end = eventType.lastIndexOf("."); end > 0; end = eventType.lastIndexOf(".", end - 1)) {
        const group = matches.get(`event/${eventType.slice(0, end)}.*`);
        if (group !== undefined) return group;
      }
      return matches.get("event");
    },
    forFunction(name) {
      return matches.get(`function/${name}`);
    },
    byId(executionId) {
      return matches.get(executionId);
    },
    target(targetId) {
      return targets.get(targetId);
    },
  };
}

const noMatches: MethodMatches = Object.freeze({ request: undefined, response: undefined });
