import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type Interceptor, type UnaryRequest } from "@connectrpc/connect";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { ActionService as ActionServiceV2beta } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { createActionsInterceptor } from "./actions-interceptor.js";
import type { ResolveContext, ResolveInstance } from "./caller-context.js";
import { createEndpointGuard, type EndpointGuard } from "./dispatch/endpoint-guard.js";
import { createExcerpter, type ExcerptOptions } from "./dispatch/excerpt.js";
import { createTargetDispatcher, type TargetDispatcher, type TargetDispatcherOptions } from "./dispatch/target-dispatcher.js";
import { createEventPublisher, type EventPublisher } from "./events/event-publisher.js";
import type { EventQueue } from "./events/event-queue.js";
import { createEventWorker, type EventWorker, type EventWorkerOptions } from "./events/event-worker.js";
import { createMemoryEventQueue } from "./events/memory-event-queue.js";
import { createFunctionRunner, type FunctionRunner } from "./functions/function-runner.js";
import { createJsonLogger, type Logger } from "./logger.js";
import { createActionService } from "./management/action-service.js";
import { createManagementAuthInterceptor, type ManagementAuthorizer } from "./management/authorize.js";
import { createStaticTokenAuthorizer } from "./management/static-token-authorizer.js";
import { createExecutionPlanner, type ExecutionPlanner, type ExecutionPlannerOptions } from "./plan/execution-planner.js";
import { type ActionStore, defaultInstanceId } from "./store/action-store.js";
import { createMemorySigningKeySource, type SigningKeySource } from "./keys/signing-key-source.js";
import { createMemoryDeliveryLog, type DeliveryLog } from "./store/delivery-log.js";

/**
 * ActionsOptions configures createActions. Only `store` is required.
 */
export interface ActionsOptions {
  /** Where targets and executions live, for example createMemoryStore() or a PostgreSQL store. */
  readonly store: ActionStore;
  /** Where event deliveries wait, default createMemoryEventQueue(). */
  readonly eventQueue?: EventQueue;
  /** Where target calls are recorded (ListTargetCalls), default createMemoryDeliveryLog(). */
  readonly deliveryLog?: DeliveryLog;
  /**
   * System tokens of the management API, as `Authorization: Bearer <token>`
   * (several allow rotation): each may manage any instance, the one a call
   * addresses (resolveInstance, else the `instanceID` option). See
   * createStaticTokenAuthorizer. Default none.
   */
  readonly adminTokens?: string | readonly string[];
  /**
   * Tokens of single instances: instance ID -> its token (or several). Each
   * manages its own instance only, and is refused (Code.PermissionDenied) in
   * calls that address another instance. Needs resolveInstance. Default none.
   */
  readonly instanceTokens?: Readonly<Record<string, string | readonly string[]>> | ReadonlyMap<string, string | readonly string[]>;
  /**
   * Authorizes management calls and decides the instance each one manages
   * (see ManagementAuthorizer), instead of adminTokens and instanceTokens.
   * Default: createStaticTokenAuthorizer of those tokens, if any. Without
   * either, registerManagement needs interceptors of its own that
   * authenticate the caller.
   */
  readonly authorize?: ManagementAuthorizer;
  /** The event types that event conditions may name (ActionService validation), default none. */
  readonly eventTypes?: readonly string[];
  /** The function names function conditions may name, default knownFunctions. */
  readonly functions?: readonly string[];
  /** Who calls, see ActionsInterceptorOptions.resolveContext. Default the CallerContext under callerContextKey. */
  readonly resolveContext?: ResolveContext;
  /**
   * The instance a request addresses, for example
   * createHostInstanceResolver(...) (from its host, as ZITADEL does from the
   * domain): whose executions run (see
   * ActionsInterceptorOptions.resolveInstance), and, for management calls
   * with adminTokens or instanceTokens, which instance the call manages.
   * Default: for executions, the instanceID of resolveContext; for
   * management calls, the `instanceID` option.
   */
  readonly resolveInstance?: ResolveInstance;
  /** The instance of requests without one, default "" (the default instance). */
  readonly instanceID?: string;
  /** Keeps target calls away from denied addresses, default createEndpointGuard(). */
  readonly endpointGuard?: EndpointGuard;
  /**
   * The instances' signing keys, which sign JWT and JWE payloads, default
   * createMemorySigningKeySource() (keys of this process only: with several
   * replicas, use createPostgresSigningKeySource). Serve their public keys
   * with createJwksHandler.
   */
  readonly signingKeys?: SigningKeySource;
  /**
   * Options of the target dispatcher (timeouts, connections, async limits),
   * default its defaults. Its `onCall` is called after the delivery log records the call.
   */
  readonly dispatcher?: Omit<TargetDispatcherOptions, "logger" | "endpointGuard" | "signingKeys" | "excerpts">;
  /**
   * Keep excerpts of the payloads and answers of target calls in the
   * delivery log (ListTargetCalls' request_excerpt and response_excerpt):
   * true for createExcerpter's defaults (2048 bytes, no secret fields), or
   * its ExcerptOptions (maxBytes, secretFields). Default false: no excerpts,
   * and calls do no work for them. TestTarget always reports excerpts, made
   * with these options when given.
   */
  readonly excerpts?: boolean | ExcerptOptions;
  /**
   * Options of the event worker, or false to run no worker in this process
   * (another process delivers). Default: a worker with its default options,
   * started at once.
   */
  readonly worker?: Partial<Omit<EventWorkerOptions, "queue" | "planner" | "dispatcher" | "logger" | "maxHops">> | false;
  /**
   * Bounds of the plans kept in memory (maxPlans, maxPlanBytes; see
   * ExecutionPlannerOptions), default theirs: no count limit, 256 MiB.
   */
  readonly plans?: Pick<ExecutionPlannerOptions, "maxPlans" | "maxPlanBytes">;
  /** Logger, default JSON lines on stderr at level "info". */
  readonly logger?: Logger;
  /**
   * Loop protection, see ActionsInterceptorOptions.maxHops; it applies to
   * functions (FunctionRunnerOptions.maxHops) and events too
   * (EventPublisherOptions.maxHops, EventWorkerOptions.maxHops). Default
   * defaultMaxHops (1).
   */
  readonly maxHops?: number;
}

/**
 * RegisterManagementOptions configures Actions.registerManagement.
 */
export interface RegisterManagementOptions {
  /**
   * Authorizes the calls of this registration, instead of the authorization
   * of createActions' options (authorize, adminTokens, instanceTokens).
   * Default that one.
   */
  readonly authorize?: ManagementAuthorizer;
  /**
   * Interceptors of the ActionService, run after the authorization (they
   * find its principal under managementPrincipalKey). Default none. Without
   * an authorization, they must authenticate callers themselves, and the
   * instanceID of the CallerContext they put under callerContextKey decides
   * the instance a call manages. The router's own interceptors do not apply
   * to the ActionService, so that no execution can ever intercept the API
   * that manages executions.
   */
  readonly interceptors?: readonly Interceptor[];
  /**
   * The services whose methods request and response conditions may name,
   * default every service of the router but the ActionService, as
   * registered when a call asks.
   */
  readonly services?: readonly DescService[];
}

/**
 * Actions is everything createActions set up, ready to be mounted.
 */
export interface Actions {
  /** The actions interceptor: add it to the interceptors of your router (connectNodeAdapter, Fastify, Express, ...). */
  readonly interceptor: Interceptor;
  /**
   * registerManagement registers the management API, the ActionService
   * zitadel.action.v2beta and zitadel.action.v2, on `router`, with the
   * authorization (authorize, adminTokens or instanceTokens) first and strict
   * JSON (unknown fields are Code.InvalidArgument). Each call manages the
   * instance of its principal. Throws Code.FailedPrecondition when there is
   * neither an authorization nor interceptors: an open management API is
   * never what anyone wants.
   */
  registerManagement(router: ConnectRouter, options?: RegisterManagementOptions): void;
  /** Publishes events to event executions: call it after your state changes. */
  readonly publisher: EventPublisher;
  /** The event worker, started unless `worker` was false. */
  readonly worker: EventWorker | undefined;
  /** Runs function executions (preuserinfo, preaccesstoken, presamlresponse, or your own names). */
  readonly runner: FunctionRunner;
  /** The plans of the store's instances, shared by the interceptor, the publisher, the worker and the runner. */
  readonly planner: ExecutionPlanner;
  /** Sends target calls. */
  readonly dispatcher: TargetDispatcher;
  /** The signing keys of JWT and JWE payloads, given or created; serve their JWKS with createJwksHandler. */
  readonly signingKeys: SigningKeySource;
  readonly store: ActionStore;
  readonly eventQueue: EventQueue;
  readonly deliveryLog: DeliveryLog;
  /**
   * close stops the worker after its deliveries in flight, waits for fired
   * (async) target calls, and closes the dispatcher, the delivery log, the
   * event queue, the signing keys and the store, given or not. Calling it again is harmless.
   *
   * For a graceful shutdown, pass a `signal` that aborts when the grace
   * period ends: the deliveries and fired calls still running then are
   * cancelled, and the cancelled deliveries are released at once (due
   * again), so another replica delivers them without waiting for their
   * leases to run out. Without a signal, close waits as long as they take.
   */
  close(options?: ActionsCloseOptions): Promise<void>;
}

/**
 * ActionsCloseOptions configures Actions.close.
 */
export interface ActionsCloseOptions {
  /** Cancels what still runs when it aborts, default none (wait for it). */
  readonly signal?: AbortSignal;
}

/**
 * createActions sets up actions for a Connect service in one call: the
 * interceptor, the management API, events (publisher and worker), functions
 * and the delivery log, sharing one store, one planner and one dispatcher.
 * The lower-level factories (createActionsInterceptor, createActionService,
 * createEventPublisher, ...) remain for other arrangements.
 *
 * ```ts
 * const actions = createActions({ store: createMemoryStore(), adminTokens: process.env.ADMIN_TOKEN });
 * const handler = connectNodeAdapter({
 *   routes: (router) => {
 *     router.service(MyService, impl);
 *     actions.registerManagement(router);
 *   },
 *   interceptors: [actions.interceptor],
 * });
 * ```
 */
export function createActions(options: ActionsOptions): Actions {
  // Checked first: a bad option must not leave a started worker behind.
  const authorize = managementAuthorizer(options);
  const logger = options.logger ?? createJsonLogger();
  const { store } = options;
  const eventQueue = options.eventQueue ?? createMemoryEventQueue();
  const deliveryLog = options.deliveryLog ?? createMemoryDeliveryLog();
  const endpointGuard = options.endpointGuard ?? createEndpointGuard();
  const onCall = options.dispatcher?.onCall;
  const signingKeys = options.signingKeys ?? createMemorySigningKeySource();
  const excerpts = options.excerpts === undefined || options.excerpts === false ? undefined : createExcerpter(options.excerpts === true ? {} : options.excerpts);
  const dispatcher = createTargetDispatcher({
    ...options.dispatcher,
    logger,
    endpointGuard,
    signingKeys,
    excerpts,
    onCall: (record) => {
      deliveryLog.record(record);
      onCall?.(record);
    },
  });
  const planner = createExecutionPlanner(store, {
    maxPlans: options.plans?.maxPlans,
    maxPlanBytes: options.plans?.maxPlanBytes,
    onStaleError: (error) => logger.error("store unreadable, using the previous execution plan", { error }),
  });
  const interceptor = createActionsInterceptor({
    planner,
    dispatcher,
    logger,
    resolveContext: options.resolveContext,
    resolveInstance: options.resolveInstance,
    instanceID: options.instanceID,
    maxHops: options.maxHops,
  });
  const publisher = createEventPublisher({ planner, queue: eventQueue, maxHops: options.maxHops });
  const runner = createFunctionRunner({ planner, dispatcher, logger, maxHops: options.maxHops });
  const worker =
    options.worker === false ? undefined : createEventWorker({ ...options.worker, queue: eventQueue, planner, dispatcher, logger, maxHops: options.maxHops });
  worker?.start();
  let closing: Promise<void> | undefined;

  return {
    interceptor,
    publisher,
    worker,
    runner,
    planner,
    dispatcher,
    signingKeys,
    store,
    eventQueue,
    deliveryLog,
    registerManagement(router, registerOptions = {}) {
      const authorizeHere = registerOptions.authorize ?? authorize;
      const interceptors = [
        ...(authorizeHere === undefined ? [] : [createManagementAuthInterceptor({ authorize: authorizeHere })]),
        ...(registerOptions.interceptors ?? []),
      ];
      if (interceptors.length === 0) {
        throw new ConnectError(
          "registerManagement needs authorize, adminTokens, instanceTokens or interceptors that authenticate callers",
          Code.FailedPrecondition,
        );
      }
      const impl = createActionService({
        store,
        services: registerOptions.services ?? (() => servicesOf(router)),
        eventTypes: options.eventTypes,
        functions: options.functions,
        endpointGuard,
        deliveryLog,
        eventQueue,
        planner,
        dispatcher,
        excerpts,
      });
      const serviceOptions = { interceptors, jsonOptions: { ignoreUnknownFields: false } };
      router.service(ActionServiceV2beta, impl, serviceOptions);
      router.service(ActionServiceV2, impl, serviceOptions);
    },
    close(closeOptions = {}) {
      closing ??= (async () => {
        await worker?.stop({ signal: closeOptions.signal });
        planner.close();
        await dispatcher.close({ signal: closeOptions.signal });
        await deliveryLog.close();
        await eventQueue.close();
        await signingKeys.close();
        await store.close();
      })();
      return closing;
    },
  };
}

/**
 * managementAuthorizer returns the authorizer of createActions' options:
 * `authorize`, else a static token authorizer of adminTokens (system) and
 * instanceTokens, whose calls address resolveInstance's instance (else the
 * instanceID option); undefined when there is none. Throws
 * Code.InvalidArgument for authorize together with tokens.
 */
function managementAuthorizer(options: ActionsOptions): ManagementAuthorizer | undefined {
  const tokens = options.adminTokens !== undefined || options.instanceTokens !== undefined;
  if (options.authorize !== undefined) {
    if (tokens) {
      throw new ConnectError("createActions takes authorize or adminTokens/instanceTokens, not both", Code.InvalidArgument);
    }
    return options.authorize;
  }
  if (!tokens) return undefined;
  const { resolveInstance } = options;
  const fallback = options.instanceID ?? defaultInstanceId;
  return createStaticTokenAuthorizer({
    systemTokens: options.adminTokens,
    instanceTokens: options.instanceTokens,
    resolveInstance:
      resolveInstance === undefined
        ? options.instanceTokens === undefined
          ? () => fallback
          : undefined
        : async (req) => {
            // The authorization interceptor hands over the call's request: unary, as every ActionService RPC.
            if (!("stream" in req) || req.stream !== false) {
              throw new ConnectError("only unary management calls are served", Code.Unimplemented);
            }
            return (await resolveInstance(req as UnaryRequest)) || fallback;
          },
  });
}

/**
 * servicesOf returns the distinct services of a router's handlers, in
 * registration order, but for the ActionService: executions never run for it.
 */
function servicesOf(router: ConnectRouter): DescService[] {
  const seen = new Set<DescService>();
  for (const handler of router.handlers) {
    if (handler.service !== ActionServiceV2 && handler.service !== ActionServiceV2beta) seen.add(handler.service);
  }
  return [...seen];
}
