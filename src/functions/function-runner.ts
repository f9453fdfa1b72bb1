import { Code, ConnectError } from "@connectrpc/connect";
import { checkMaxHops, hopHeader } from "../dispatch/hop.js";
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
  /**
   * Loop protection, as ActionsInterceptorOptions.maxHops: a run whose
   * `hops` (FunctionRunOptions) is at least this many, default
   * defaultMaxHops (1), is refused with Code.FailedPrecondition when the
   * function has targets.
   */
  readonly maxHops?: number;
}

/**
 * FunctionRunOptions says where a function runs.
 */
export interface FunctionRunOptions {
  /** The instance whose executions run, default defaultInstanceId (""). */
  readonly instanceId?: string;
  /** Cancels the synchronous target calls. Default none. */
  readonly signal?: AbortSignal;
  /**
   * How many target calls led to the request that runs the function:
   * hopsOf(the request's headers), default 0. The target calls carry
   * hops + 1 in hopHeader.
   */
  readonly hops?: number;
}

/**
 * FunctionRunner calls the targets of function executions.
 */
export interface FunctionRunner {
  /**
   * run POSTs `payload` to the targets of the execution "function/<name>", in
   * order, and resolves the JSON answers of its `call` targets (empty answers
   * left out). Every target gets the same payload. Webhooks only report
   * failure; async targets are fired. A failing target with interruptOnError
   * rejects with its error (Code.FailedPrecondition "Execution failed", or a
   * forwarded code); one without is logged and skipped. Resolves [] when no
   * execution exists. The third argument is the FunctionRunOptions, or only
   * their signal.
   */
  run(name: string, payload: unknown, options?: FunctionRunOptions | AbortSignal): Promise<unknown[]>;
  /**
   * runCombined runs the targets as `run` does, but combines their answers
   * into one response as ZITADEL does: each `call` target's JSON answer is
   * folded into the response so far with `combine` (what it throws fails that
   * target), and every target after the first answer gets the response so far
   * as the member `response` of its payload (an object payload is required).
   * Resolves the combined response, undefined when no target answered.
   */
  runCombined<R>(
    name: string,
    payload: Record<string, unknown>,
    combine: (response: R | undefined, answer: unknown) => R,
    encode: (response: R) => unknown,
    options?: FunctionRunOptions | AbortSignal,
  ): Promise<R | undefined>;
}

/**
 * createFunctionRunner returns a FunctionRunner.
 */
export function createFunctionRunner(options: FunctionRunnerOptions): FunctionRunner {
  const logger = options.logger ?? createJsonLogger();
  const maxHops = checkMaxHops(options.maxHops);
  /** checkHops refuses a run that a chain of maxHops or more target calls led to. */
  const checkHops = (name: string, hops: number) => {
    if (hops < maxHops) return;
    logger.warn("function refused: it was run for a target call and would call targets again", { function: name, hops, maxHops });
    throw new ConnectError(
      `actions loop: function "${name}" runs for a request that a target call made (${hopHeader}: ${hops}) and would call targets again; ` +
        `at most ${maxHops} level${maxHops === 1 ? "" : "s"} of target calls are allowed (maxHops)`,
      Code.FailedPrecondition,
    );
  };
  return {
    async run(name, payload, runOptions) {
      const { instanceId, signal, hops = 0 } = runOptionsOf(runOptions);
      const match = (await options.planner.plan(instanceId)).forFunction(name);
      if (match === undefined || match.targets.length === 0) return [];
      checkHops(name, hops);
      const body = JSON.stringify(payload);
      const answers: unknown[] = [];
      await runTargetChain({
        dispatcher: options.dispatcher,
        logger,
        match,
        trigger: name,
        signal,
        hop: hops + 1,
        body: () => body,
        onAnswer: (_target, json) => answers.push(json),
      });
      return answers;
    },

    async runCombined(name, payload, combine, encode, runOptions) {
      const { instanceId, signal, hops = 0 } = runOptionsOf(runOptions);
      const match = (await options.planner.plan(instanceId)).forFunction(name);
      if (match === undefined || match.targets.length === 0) return undefined;
      checkHops(name, hops);
      let response: Parameters<typeof encode>[0] | undefined;
      let body: string | undefined;
      await runTargetChain({
        dispatcher: options.dispatcher,
        logger,
        match,
        trigger: name,
        signal,
        hop: hops + 1,
        body: () => (body ??= JSON.stringify(response === undefined ? payload : { ...payload, response: encode(response) })),
        onAnswer: (_target, json) => {
          response = combine(response, json);
          body = undefined;
        },
      });
      return response;
    },
  };
}

/** runOptionsOf returns the FunctionRunOptions of a run's third argument: the options, or only a signal. */
function runOptionsOf(options: FunctionRunOptions | AbortSignal | undefined): FunctionRunOptions {
  return options instanceof AbortSignal ? { signal: options } : (options ?? {});
}
