import { type DescMessage, type DescMethod, type JsonValue, type Message, type Registry, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { type CallerContext, contextFromValues, type ResolveContext, type ResolveInstance } from "./caller-context.js";
import { type ActionStore, defaultInstanceId } from "./store/action-store.js";
import type { ExecutionMatch, ExecutionPlan } from "./plan/execution-plan.js";
import { createExecutionPlanner, type ExecutionPlanner } from "./plan/execution-planner.js";
import { type Logger, createJsonLogger } from "./logger.js";
import { checkMaxHops, hopHeader, hopsOf } from "./dispatch/hop.js";
import { defaultPayloadHeaders, encodeRequestPayload, type PayloadHeaders, pickPayloadHeaders } from "./dispatch/payload.js";
import { runTargetChain } from "./target-chain.js";
import { callAnswerMessage } from "./dispatch/call-answer.js";
import { createTargetDispatcher, type TargetDispatcher } from "./dispatch/target-dispatcher.js";

/**
 * defaultProtectedServices are the services the interceptor never intercepts,
 * whatever executions exist (`all`, service or method ones): the
 * ActionService, so that no target can lock administrators out of the API
 * that would fix it, and gRPC's health service (grpc.health.v1.Health), so
 * that no target can make a healthy server look dead to its orchestrator.
 * The ActionService refuses conditions that name them.
 */
export const defaultProtectedServices: readonly string[] = [
  "zitadel.action.v2beta.ActionService",
  "zitadel.action.v2.ActionService",
  "grpc.health.v1.Health",
];

/**
 * ActionsInterceptorOptions configures createActionsInterceptor. Give either
 * a store or a planner.
 */
export interface ActionsInterceptorOptions {
  /** Where targets and executions live; a planner is made for it. */
  readonly store?: ActionStore;
  /** A planner to share with other users of the same store. */
  readonly planner?: ExecutionPlanner;
  /** Sends the target calls, default createTargetDispatcher({ logger }). */
  readonly dispatcher?: TargetDispatcher;
  /**
   * Who calls, default the CallerContext under callerContextKey. Without
   * resolveInstance, it runs for every unary request (its instanceID selects
   * the executions); with resolveInstance, only for requests with a
   * matching execution.
   */
  readonly resolveContext?: ResolveContext;
  /**
   * The instance (tenant) whose executions run for a request, default the
   * instanceID of resolveContext's answer. It runs for every unary request,
   * so keep it cheap (a header, a context value). An empty answer, as an
   * empty instanceID, means the `instanceID` option.
   */
  readonly resolveInstance?: ResolveInstance;
  /**
   * The instance of requests without one, default "" (defaultInstanceId,
   * the instance that the store's own methods manage). It is also the
   * instanceID of their payloads.
   */
  readonly instanceID?: string;
  /** Registry for google.protobuf.Any in messages, default none. */
  readonly registry?: Registry;
  /**
   * Services that are never intercepted, by any execution, default
   * defaultProtectedServices (the ActionService v2beta and v2). Pass the same
   * list to createActionService, which then refuses conditions naming them.
   */
  readonly protectedServices?: readonly string[];
  /**
   * Loop protection: how many target calls deep a request may be and still
   * run executions, default defaultMaxHops (1). Every target call carries
   * hopHeader (`Actions-Hop: n`, n = the request's own count + 1); a request
   * arriving with n >= maxHops for which an execution would run is refused
   * with Code.FailedPrecondition before any target is called, so a target
   * whose endpoint leads back to an intercepted method (directly or through
   * a proxy that forwards headers) ends after one round. Requests no
   * execution matches are served whatever they carry. With maxHops m, one
   * client request causes at most t + t^2 + ... + t^(m) target calls, where t
   * is the number of targets an execution runs (includes counted).
   */
  readonly maxHops?: number;
  /** Request headers copied into payloads, default defaultPayloadHeaders. */
  readonly payloadHeaders?: readonly string[];
  /** Logger, default JSON lines on stderr at level "info". */
  readonly logger?: Logger;
}

/**
 * createActionsInterceptor returns a server-side Connect interceptor that runs
 * Actions V2 executions around unary RPCs, identically for the Connect, gRPC
 * and gRPC-web protocols:
 *
 * 1. request: the best-matching request execution's targets run in order
 *    before the handler; `call` targets may replace the request message.
 * 2. the handler runs; if it fails, the error goes to the client and no
 *    response target runs.
 * 3. response: the best-matching response execution's targets run before the
 *    reply; `call` targets may replace the response message.
 *
 * A target that fails interrupts the RPC with its error when it has
 * interruptOnError, else it is logged and the chain goes on. Streaming RPCs
 * pass through untouched. A request with no matching execution costs two map
 * lookups.
 */
export function createActionsInterceptor(options: ActionsInterceptorOptions): Interceptor {
  const planner = options.planner ?? (options.store ? createExecutionPlanner(options.store) : undefined);
  if (planner === undefined) {
    throw new ConnectError("createActionsInterceptor needs a store or a planner", Code.InvalidArgument);
  }
  const logger = options.logger ?? createJsonLogger();
  const dispatcher = options.dispatcher ?? createTargetDispatcher({ logger });
  const resolveContext = options.resolveContext ?? contextFromValues;
  const fallbackInstance = options.instanceID ?? defaultInstanceId;
  const protectedServices = new Set(options.protectedServices ?? defaultProtectedServices);
  const maxHops = checkMaxHops(options.maxHops);
  const payloadHeaders = options.payloadHeaders ?? defaultPayloadHeaders;
  const jsonRead = { registry: options.registry, ignoreUnknownFields: false };
  const jsonWrite = { registry: options.registry };
  const fullMethods = new WeakMap<DescMethod, string>();

  /** State of one intercepted RPC, shared by its request and response phases. */
  interface Rpc {
    readonly fullMethod: string;
    readonly context: CallerContext;
    readonly headers: PayloadHeaders;
    readonly signal: AbortSignal;
    /** The hop of the target calls this RPC makes. */
    readonly hop: number;
  }

  const run = async (
    rpc: Rpc,
    match: ExecutionMatch,
    schema: DescMessage,
    message: Message,
    payload: (json: JsonValue) => string,
  ): Promise<{ message: Message; json: JsonValue }> => {
    let json = toJson(schema, message, jsonWrite);
    let body: string | undefined;
    await runTargetChain({
      dispatcher,
      logger,
      match,
      trigger: rpc.fullMethod,
      signal: rpc.signal,
      hop: rpc.hop,
      body: () => (body ??= payload(json)),
      onAnswer(target, answer) {
        message = callAnswerMessage(schema, target, answer, jsonRead);
        json = toJson(schema, message, jsonWrite);
        body = undefined;
      },
    });
    return { message, json };
  };

  // The interceptor is not an async function: with the default context and
  // instance, a request without a matching execution goes to `next` in the
  // same tick, with no promise of its own.
  return (next) => (req) => {
    // Streaming RPCs pass through; protected services are never intercepted,
    // so no execution can lock anyone out of the ActionService.
    if (req.stream || protectedServices.has(req.service.typeName)) {
      return next(req);
    }
    if (options.resolveInstance !== undefined) {
      const instance = options.resolveInstance(req);
      return instance instanceof Promise
        ? instance.then((id) => withPlan(next, req, id || fallbackInstance, undefined))
        : withPlan(next, req, instance || fallbackInstance, undefined);
    }
    const context = resolveContext(req);
    return context instanceof Promise
      ? context.then((c) => withPlan(next, req, c.instanceID || fallbackInstance, c))
      : withPlan(next, req, context.instanceID || fallbackInstance, context);
  };

  function withPlan(
    next: Parameters<Interceptor>[0],
    req: UnaryRequest,
    instanceId: string,
    context: CallerContext | undefined,
  ): ReturnType<typeof next> {
    const current = planner!.plan(instanceId);
    return current instanceof Promise
      ? current.then((plan) => intercept(plan, next, req, instanceId, context))
      : intercept(current, next, req, instanceId, context);
  }

  function intercept(
    plan: ExecutionPlan,
    next: Parameters<Interceptor>[0],
    req: UnaryRequest,
    instanceId: string,
    context: CallerContext | undefined,
  ): ReturnType<typeof next> {
    let fullMethod = fullMethods.get(req.method);
    if (fullMethod === undefined) {
      fullMethod = `/${req.service.typeName}/${req.method.name}`;
      fullMethods.set(req.method, fullMethod);
    }
    const { request, response } = plan.forMethod(fullMethod);
    if (request === undefined && response === undefined) {
      return next(req);
    }
    const hops = hopsOf(req.header);
    if (hops >= maxHops) {
      logger.warn("request refused: it was made by a target call and would call targets again", {
        method: fullMethod,
        hops: Number.isFinite(hops) ? hops : req.header.get(hopHeader),
        maxHops,
      });
      return Promise.reject(new ConnectError(
        `actions loop: this request was made by a target call (${hopHeader}: ${req.header.get(hopHeader)}) and would call targets again; ` +
          `at most ${maxHops} level${maxHops === 1 ? "" : "s"} of target calls are allowed (maxHops)`,
        Code.FailedPrecondition,
      ));
    }
    return runPhases(next, req, fullMethod, request, response, instanceId, context, hops);
  }

  async function runPhases(
    next: Parameters<Interceptor>[0],
    req: UnaryRequest,
    fullMethod: string,
    request: ExecutionMatch | undefined,
    response: ExecutionMatch | undefined,
    instanceId: string,
    context: CallerContext | undefined,
    hops: number,
  ): Promise<UnaryResponse | StreamResponse> {
    const resolved = context ?? resolveContext(req);
    const rpc: Rpc = {
      fullMethod,
      context: withInstance(resolved instanceof Promise ? await resolved : resolved, instanceId),
      headers: pickPayloadHeaders(req.header, req.url, payloadHeaders),
      signal: req.signal,
      hop: hops + 1,
    };
    let forwarded: UnaryRequest = req;
    let requestJson: JsonValue | undefined;
    if (request !== undefined) {
      const result = await run(rpc, request, req.method.input, req.message, (json) =>
        encodeRequestPayload({ ...rpc, request: json }),
      );
      requestJson = result.json;
      if (result.message !== req.message) {
        forwarded = { ...req, message: result.message };
      }
    }
    const res = await next(forwarded);
    if (response === undefined || res.stream) {
      return res;
    }
    requestJson ??= toJson(req.method.input, forwarded.message, jsonWrite);
    const result = await run(rpc, response, req.method.output, res.message, (json) =>
      encodeRequestPayload({ ...rpc, request: requestJson, response: json }),
    );
    return result.message === res.message ? res : { ...res, message: result.message };
  }

  /** withInstance returns the context with the instance whose executions run as its instanceID. */
  function withInstance(context: CallerContext, instanceId: string): CallerContext {
    return context.instanceID === instanceId || (instanceId === "" && context.instanceID === undefined)
      ? context
      : { ...context, instanceID: instanceId };
  }
}
