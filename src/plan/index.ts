// Which targets run: an execution plan compiled from a store, kept current by a planner.
export { compileExecutionPlan, type ExecutionMatch, type ExecutionPlan, type MethodMatches } from "./execution-plan.js";
export {
  createExecutionPlanner,
  defaultMaxPlanBytes,
  type ExecutionPlanner,
  type ExecutionPlannerOptions,
  type ExecutionPlannerStats,
} from "./execution-planner.js";
