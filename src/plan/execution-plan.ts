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
  return new CompiledPlan(state.matches, state.targets);
}

/**
 * CompiledPlan is the ExecutionPlan of planOf: a class, so that its methods
 * are shared and a lookup reads few objects (plans of many instances are
 * read in turn, mostly from cold memory).
 */
class CompiledPlan implements ExecutionPlan {
  readonly #matches: ReadonlyMap<string, ExecutionMatch>;
  readonly #targets: ReadonlyMap<string, Target>;
  readonly #methodMemo = new Map<string, MethodMatches>();

  constructor(matches: ReadonlyMap<string, ExecutionMatch>, targets: ReadonlyMap<string, Target>) {
    this.#matches = matches;
    this.#targets = targets;
  }

  forMethod(fullMethod: string): MethodMatches {
    let m = this.#methodMemo.get(fullMethod);
    if (m === undefined) {
      const request = this.#bestForMethod("request", fullMethod);
      const response = this.#bestForMethod("response", fullMethod);
      m = request === undefined && response === undefined ? noMatches : Object.freeze({ request, response });
      this.#methodMemo.set(fullMethod, m);
    }
    return m;
  }

  forEvent(eventType: string): ExecutionMatch | undefined {
    const matches = this.#matches;
    const exact = matches.get(`event/${eventType}`);
    if (exact !== undefined) return exact;
    for (let end = eventType.lastIndexOf("."); end > 0; end = eventType.lastIndexOf(".", end - 1)) {
      const group = matches.get(`event/${eventType.slice(0, end)}.*`);
      if (group !== undefined) return group;
    }
    return matches.get("event");
  }

  forFunction(name: string): ExecutionMatch | undefined {
    return this.#matches.get(`function/${name}`);
  }

  byId(executionId: string): ExecutionMatch | undefined {
    return this.#matches.get(executionId);
  }

  target(targetId: string): Target | undefined {
    return this.#targets.get(targetId);
  }

  #bestForMethod(type: "request" | "response", fullMethod: string): ExecutionMatch | undefined {
    const matches = this.#matches;
    const exact = matches.get(type + fullMethod);
    if (exact !== undefined) return exact;
    const serviceEnd = fullMethod.lastIndexOf("/");
    if (serviceEnd > 0) {
      const service = matches.get(type + fullMethod.slice(0, serviceEnd));
      if (service !== undefined) return service;
    }
    return matches.get(type);
  }
}

const noMatches: MethodMatches = Object.freeze({ request: undefined, response: undefined });
