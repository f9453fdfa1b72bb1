import { Code, ConnectError } from "@connectrpc/connect";
import type { ExecutionMatch } from "./plan/execution-plan.js";
import type { Logger } from "./logger.js";
import type { Target } from "./target.js";
import { errorDetail, type TargetDispatcher } from "./dispatch/target-dispatcher.js";

/**
 * TargetChainOptions configures runTargetChain.
 */
export interface TargetChainOptions {
  readonly dispatcher: TargetDispatcher;
  readonly logger: Logger;
  readonly match: ExecutionMatch;
  /** What triggered the chain: a full method or a function name. */
  readonly trigger: string;
  /** The JSON body for the next target; called before every target. */
  readonly body: () => string;
  /** Cancels the synchronous calls, for example with the RPC. */
  readonly signal?: AbortSignal;
  /** The hop of every call (see TargetCall.hop), default 1. */
  readonly hop?: number;
  /**
   * onAnswer receives the non-empty JSON answer of each `call` target, in
   * order. What it throws counts as that target's failure.
   */
  readonly onAnswer: (target: Target, json: unknown) => void;
}

/**
 * runTargetChain runs the targets of an execution in their order: `async`
 * targets are fired, the others called one after the other. A failed target
 * (or a failure of onAnswer) rejects the chain with its error when the
 * target has interruptOnError or the call was cancelled; otherwise it is
 * logged and the chain goes on.
 */
export async function runTargetChain(options: TargetChainOptions): Promise<void> {
  const { dispatcher, logger, match, trigger } = options;
  for (const target of match.targets) {
    if (target.type === "async") {
      dispatcher.fire({ target, executionId: match.executionId, trigger, body: options.body(), hop: options.hop ?? 1 });
      continue;
    }
    try {
      const answer = await dispatcher.call({ target, executionId: match.executionId, trigger, body: options.body(), hop: options.hop ?? 1, signal: options.signal });
      if (target.type === "call" && answer.json !== undefined && answer.json !== null) {
        options.onAnswer(target, answer.json);
      }
    } catch (e) {
      const error = ConnectError.from(e);
      const attributes = { target: target.name, targetId: target.id, execution: match.executionId, trigger, error: errorDetail(error) };
      if (error.code === Code.Canceled || target.interruptOnError) {
        logger.warn("target failed, interrupted", attributes);
        throw error;
      }
      logger.warn("target failed, continuing", attributes);
    }
  }
}
