import type { ExecutionPlanner } from "../plan/execution-planner.js";
import { type Logger, createJsonLogger } from "../logger.js";
import { runTargetChain } from "../target-chain.js";
import type { TargetDispatcher } from "../dispatch/target-dispatcher.js";

/**
 * FunctionRunnerOptions configures createFunctionRunner.
 */
export interface FunctionRunnerOptions {
  readonly planner: ExecutionPlanner;
  readonly dispatcher: TargetDispatcher;
  /** Logger, default JSON lines on stderr at level "info". */
  readonly logger?: Logger;
}

/**
 * FunctionRunOptions says where a function runs.
 */
export interface FunctionRunOptions {
  /** The instance whose executions run, default defaultInstanceId (""). */
  readonly instanceId?: string;
  /** Cancels the synchronous target calls. Default none. */
  readonly signal?: AbortSignal;
}

/**
 * FunctionRunner calls the targets of function executions.
 */
export interface FunctionRunner {
  /**
   * run POSTs `payload` to the targets of the execution "function/<name>", in
   * order, and resolves the JSON answers of its `call` targets (empty answers
   * left out). Webhooks only report failure; async targets are fired. A
   * failing target with interruptOnError rejects with its error (Code.FailedPrecondition
   * "Execution failed", or a forwarded code); one without is logged and skipped.
   * Resolves [] when no execution exists. The third argument is the
   * FunctionRunOptions, or only their signal.
   */
  run(name: string, payload: unknown, options?: FunctionRunOptions | AbortSignal): Promise<unknown[]>;
}

/**
 * createFunctionRunner returns a FunctionRunner.
 */
export function createFunctionRunner(options: FunctionRunnerOptions): FunctionRunner {
  const logger = options.logger ?? createJsonLogger();
  return {
    async run(name, payload, runOptions) {
      const { instanceId, signal } = runOptions instanceof AbortSignal ? { instanceId: undefined, signal: runOptions } : (runOptions ?? {});
      const match = (await options.planner.plan(instanceId)).forFunction(name);
      if (match === undefined || match.targets.length === 0) return [];
      const body = JSON.stringify(payload);
      const answers: unknown[] = [];
      await runTargetChain({
        dispatcher: options.dispatcher,
        logger,
        match,
        trigger: name,
        signal,
        body: () => body,
        onAnswer: (_target, json) => answers.push(json),
      });
      return answers;
    },
  };
}
