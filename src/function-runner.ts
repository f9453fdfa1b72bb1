import { Code, ConnectError } from "@connectrpc/connect";
import type { ExecutionPlanner } from "./execution-planner.js";
import { type Logger, createJsonLogger } from "./logger.js";
import { errorDetail, type TargetDispatcher } from "./target-dispatcher.js";

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
 * FunctionRunner calls the targets of function executions.
 */
export interface FunctionRunner {
  /**
   * run POSTs `payload` to the targets of the execution "function/<name>", in
   * order, and resolves the JSON answers of its `call` targets (empty answers
   * left out). Webhooks only report failure; async targets are fired. A
   * failing target with interruptOnError rejects with its error (Code.FailedPrecondition
   * "Execution failed", or a forwarded code); one without is logged and skipped.
   * Resolves [] when no execution exists.
   */
  run(name: string, payload: unknown, signal?: AbortSignal): Promise<unknown[]>;
}

/**
 * createFunctionRunner returns a FunctionRunner.
 */
export function createFunctionRunner(options: FunctionRunnerOptions): FunctionRunner {
  const logger = options.logger ?? createJsonLogger();
  return {
    async run(name, payload, signal) {
      const current = options.planner.plan();
      const plan = current instanceof Promise ? await current : current;
      const match = plan.forFunction(name);
      if (match === undefined || match.targets.length === 0) return [];
      const body = JSON.stringify(payload);
      const answers: unknown[] = [];
      for (const target of match.targets) {
        const call = { target, executionId: match.executionId, trigger: name, body };
        if (target.type === "async") {
          options.dispatcher.fire(call);
          continue;
        }
        try {
          const answer = await options.dispatcher.call({ ...call, signal });
          if (target.type === "call" && answer.json !== undefined && answer.json !== null) {
            answers.push(answer.json);
          }
        } catch (e) {
          const error = ConnectError.from(e);
          const attributes = { function: name, target: target.name, targetId: target.id, error: errorDetail(error) };
          if (error.code === Code.Canceled || target.interruptOnError) {
            logger.warn("function target failed, function interrupted", attributes);
            throw error;
          }
          logger.warn("function target failed, continuing", attributes);
        }
      }
      return answers;
    },
  };
}
