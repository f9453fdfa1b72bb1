import type { Condition } from "../condition.js";
import type { ActionSnapshot } from "../store/action-store.js";
import type { Target } from "../target.js";
import { buildPlanState, type PlanState, type ResolvedTarget, resolveWithPaths } from "./plan-state.js";

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
 * ExplainedLevel is one level of a best match (see ExecutionPlan.explain).
 */
export interface ExplainedLevel {
  /** The execution ID of the level, for example "request/pkg.Service". */
  readonly executionId: string;
  /** True when an execution is set at this level. */
  readonly exists: boolean;
  /** True for the level whose execution runs: the first that exists. */
  readonly matched: boolean;
}

/**
 * ExecutionExplanation tells which execution runs for a condition and why
 * (see ExecutionPlan.explain).
 */
export interface ExecutionExplanation {
  /** The execution that runs, undefined when no level has one. */
  readonly match: ExecutionMatch | undefined;
  /**
   * The targets that run, in order, each with the path of execution IDs
   * that reaches it (the matched execution first, then each include down to
   * the execution whose list names the target). The same targets as
   * `match.targets`, in the same order.
   */
  readonly targets: readonly ResolvedTarget[];
  /** The levels looked at, most specific first (see matchLevels). */
  readonly levels: readonly ExplainedLevel[];
}

/**
 * matchLevels returns the execution IDs that the best match of a condition
 * looks at, most specific first; the first that has an execution runs. It is
 * the one definition of "best match" that forMethod, forEvent, forFunction
 * and explain follow:
 *
 * - request/response method "/p.S/M": "request/p.S/M", "request/p.S", "request";
 *   a service: the service, then the type; `all`: the type alone.
 * - event "user.human.added": "event/user.human.added", then every group,
 *   longest first ("event/user.human.*", "event/user.*"), then "event"; a
 *   group: that group, the shorter groups, then "event"; `all`: "event".
 * - function "name": "function/name" only.
 *
 * The condition is not validated (see validateCondition).
 */
export function matchLevels(condition: Condition): string[] {
  const c = condition;
  if (c.type === "request" || c.type === "response") {
    if ("method" in c) return methodLevels(c.type, c.method);
    return "service" in c ? [`${c.type}/${c.service}`, c.type] : [c.type];
  }
  if (c.type === "function") return functionLevels(c.name);
  if ("event" in c) return eventLevels(c.event);
  if ("group" in c) return [...groupLevels(c.group), "event"];
  return ["event"];
}

/** methodLevels returns the levels of a full method "/p.S/M": the method, its service, the type. */
function methodLevels(type: "request" | "response", fullMethod: string): string[] {
  const serviceEnd = fullMethod.lastIndexOf("/");
  return serviceEnd > 0 ? [type + fullMethod, type + fullMethod.slice(0, serviceEnd), type] : [type + fullMethod, type];
}

/** functionLevels returns the one level of a function: "function/name". */
function functionLevels(name: string): string[] {
  return [`function/${name}`];
}

/** eventLevels returns the levels of an event type: the event, its groups longest first, then "event". */
function eventLevels(eventType: string): string[] {
  const levels = [`event/${eventType}`];
  const lastDot = eventType.lastIndexOf(".");
  if (lastDot > 0) levels.push(...groupLevels(eventType.slice(0, lastDot)));
  levels.push("event");
  return levels;
}

/** groupLevels returns the group "prefix" and every shorter group, longest first: "event/a.b.*", "event/a.*". */
function groupLevels(prefix: string): string[] {
  const levels = [`event/${prefix}.*`];
  for (let end = prefix.lastIndexOf("."); end > 0; end = prefix.lastIndexOf(".", end - 1)) {
    levels.push(`event/${prefix.slice(0, end)}.*`);
  }
  return levels;
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
  /**
   * explain tells which execution runs for a condition, following the same
   * levels (matchLevels) as forMethod, forEvent and forFunction: every level
   * looked at, whether it exists and which matched, and the matched
   * execution's targets with the includes that reach them.
   */
  explain(condition: Condition): ExecutionExplanation;
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
  return new CompiledPlan(state);
}

/** How many event types a plan remembers the best match of (CompiledPlan.forEvent). */
const maxEventMemo = 1000;

/**
 * CompiledPlan is the ExecutionPlan of planOf: a class, so that its methods
 * are shared and a lookup reads few objects (plans of many instances are
 * read in turn, mostly from cold memory).
 */
class CompiledPlan implements ExecutionPlan {
  readonly #state: PlanState;
  readonly #methodMemo = new Map<string, MethodMatches>();
  /** Best matches of event types without an execution of their own; undefined (no match) is kept as null. */
  readonly #eventMemo = new Map<string, ExecutionMatch | null>();

  constructor(state: PlanState) {
    this.#state = state;
  }

  forMethod(fullMethod: string): MethodMatches {
    let m = this.#methodMemo.get(fullMethod);
    if (m === undefined) {
      const request = this.#best(methodLevels("request", fullMethod));
      const response = this.#best(methodLevels("response", fullMethod));
      m = request === undefined && response === undefined ? noMatches : Object.freeze({ request, response });
      this.#methodMemo.set(fullMethod, m);
    }
    return m;
  }

  forEvent(eventType: string): ExecutionMatch | undefined {
    // The exact event first, without building the levels: most events have an execution of their own or none.
    const exact = this.#state.matches.get(`event/${eventType}`);
    if (exact !== undefined) return exact;
    // Then the levels, once per event type (a plan is never changed, so neither is its answer); the memo
    // is bounded, as event types may come from anywhere.
    let m = this.#eventMemo.get(eventType);
    if (m === undefined) {
      m = this.#best(eventLevels(eventType)) ?? null;
      if (this.#eventMemo.size >= maxEventMemo) this.#eventMemo.clear();
      this.#eventMemo.set(eventType, m);
    }
    return m ?? undefined;
  }

  forFunction(name: string): ExecutionMatch | undefined {
    return this.#best(functionLevels(name));
  }

  byId(executionId: string): ExecutionMatch | undefined {
    return this.#state.matches.get(executionId);
  }

  target(targetId: string): Target | undefined {
    return this.#state.targets.get(targetId);
  }

  explain(condition: Condition): ExecutionExplanation {
    const matches = this.#state.matches;
    let match: ExecutionMatch | undefined;
    const levels = matchLevels(condition).map((executionId): ExplainedLevel => {
      const level = matches.get(executionId);
      const matched = level !== undefined && match === undefined;
      if (matched) match = level;
      return Object.freeze({ executionId, exists: level !== undefined, matched });
    });
    const targets = match === undefined ? [] : resolveWithPaths(this.#state, match.executionId);
    return Object.freeze({ match, targets: Object.freeze(targets), levels: Object.freeze(levels) });
  }

  /** #best returns the match of the first level that has one. */
  #best(levels: readonly string[]): ExecutionMatch | undefined {
    const matches = this.#state.matches;
    for (const id of levels) {
      const match = matches.get(id);
      if (match !== undefined) return match;
    }
    return undefined;
  }
}

const noMatches: MethodMatches = Object.freeze({ request: undefined, response: undefined });
