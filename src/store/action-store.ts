import type { Condition } from "../condition.js";
import type { Execution, ExecutionTarget } from "../execution.js";
import type { Target, TargetInput, TargetPatch } from "../target.js";

/**
 * ActionSnapshot is a consistent view of all targets and executions.
 */
export interface ActionSnapshot {
  readonly targets: readonly Target[];
  readonly executions: readonly Execution[];
}

/**
 * ActionStore keeps targets and executions. Every implementation passes the
 * shared contract suite (test/store-contract.ts): it validates its input,
 * writes all or nothing, and tells watchers about every change before the
 * write's promise resolves (for changes made through this instance) or soon
 * after (for changes made elsewhere, for example by another replica).
 */
export interface ActionStore {
  /**
   * createTarget stores a new target with a generated ID and signing key.
   * Code.InvalidArgument for a bad field, Code.AlreadyExists for a taken name.
   */
  createTarget(input: TargetInput): Promise<Target>;
  /**
   * updateTarget changes a target. Code.NotFound for an unknown ID,
   * Code.InvalidArgument for a bad field, Code.AlreadyExists for a taken name.
   */
  updateTarget(id: string, patch: TargetPatch): Promise<Target>;
  /**
   * deleteTarget removes a target and every reference to it from executions;
   * an execution left with no entries is removed, and so are the includes of
   * a removed execution (in cascade). Resolves false when there was no such
   * target (which is not an error).
   */
  deleteTarget(id: string): Promise<boolean>;
  /** getTarget returns a target, or undefined. */
  getTarget(id: string): Promise<Target | undefined>;
  /** listTargets returns all targets, oldest first. */
  listTargets(): Promise<readonly Target[]>;
  /**
   * setExecution replaces the list of the execution of `condition` and returns
   * it; an empty list removes the execution, and the includes of it from
   * other executions (in cascade, as for deleteTarget), and resolves undefined.
   * Code.InvalidArgument for a malformed condition or list, an include cycle or
   * an include chain deeper than maxIncludeDepth; Code.NotFound for an unknown
   * target or included execution.
   */
  setExecution(condition: Condition, targets: readonly ExecutionTarget[]): Promise<Execution | undefined>;
  /** getExecution returns an execution by its ID (see executionId), or undefined. */
  getExecution(id: string): Promise<Execution | undefined>;
  /** listExecutions returns all executions, ordered by ID. */
  listExecutions(): Promise<readonly Execution[]>;
  /** snapshot returns all targets and executions as of one moment. */
  snapshot(): Promise<ActionSnapshot>;
  /**
   * watch calls `listener` after each change to targets or executions, and
   * returns a function that stops the calls.
   */
  watch(listener: () => void): () => void;
  /** close releases the store's resources. */
  close(): Promise<void>;
}
