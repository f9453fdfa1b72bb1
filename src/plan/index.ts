// Which targets run: an execution plan compiled from a store, kept current by a planner.
export {
  compileExecutionPlan,
  type ExecutionExplanation,
  type ExecutionMatch,
  type ExecutionPlan,
  type ExplainedLevel,
  matchLevels,
  type MethodMatches,
} from "./execution-plan.js";
export type { ResolvedTarget } from "./plan-state.js";
export {
  createExecutionPlanner,
  defaultMaxPlanBytes,
  type ExecutionPlanner,
  type ExecutionPlannerOptions,
  type ExecutionPlannerStats,
} from "./execution-planner.js";
