// Which targets run: an execution plan compiled from a store, kept current by a planner.
export { compileExecutionPlan, type ExecutionMatch, type ExecutionPlan, type MethodMatches } from "./execution-plan.js";
export { createExecutionPlanner, type ExecutionPlanner, type ExecutionPlannerOptions } from "./execution-planner.js";
