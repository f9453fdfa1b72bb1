import type { DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { ActionService as ActionServiceV2beta } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { createActionsInterceptor } from "./actions-interceptor.js";
import type { ResolveContext, ResolveInstance } from "./caller-context.js";
import { createEndpointGuard, type EndpointGuard } from "./dispatch/endpoint-guard.js";
import { createTargetDispatcher, type TargetDispatcher, type TargetDispatcherOptions } from "./dispatch/target-dispatcher.js";
import { createEventPublisher, type EventPublisher } from "./events/event-publisher.js";
import type { EventQueue } from "./events/event-queue.js";
import { createEventWorker, type EventWorker, type EventWorkerOptions } from "./events/event-worker.js";
import { createMemoryEventQueue } from "./events/memory-event-queue.js";
import { createFunctionRunner, type FunctionRunner } from "./functions/function-runner.js";
import { createJsonLogger, type Logger } from "./logger.js";
import { createActionService } from "./management/action-service.js";
import { createBearerAuthInterceptor } from "./management/bearer-auth.js";
import { createExecutionPlanner, type ExecutionPlanner } from "./plan/execution-planner.js";
import type { ActionStore } from "./store/action-store.js";
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
   * Bearer tokens of the management API (see createBearerAuthInterceptor);
   * several allow rotation. Default none: registerManagement then needs
   * interceptors of its own that authenticate the caller.
   */
  readonly adminTokens?: string | readonly string[];
  /** The event types that event conditions may name (ActionService validation), default none. */
  readonly eventTypes?: readonly string[];
  /** The function names function conditions may name, default knownFunctions. */
  readonly functions?: readonly string[];
  /** Who calls, see ActionsInterceptorOptions.resolveContext. Default the CallerContext under callerContextKey. */
  readonly resolveContext?: ResolveContext;
  /** The instance of a request, see ActionsInterceptorOptions.resolveInstance. Default from resolveContext. */
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
  readonly dispatcher?: Omit<TargetDispatcherOptions, "logger" | "endpointGuard" | "signingKeys">;
  /**
   * Options of the event worker, or false to run no worker in this process
   * (another process delivers). Default: a worker with its default options,
   * started at once.
   */
  readonly worker?: Partial<Omit<EventWorkerOptions, "queue" | "planner" | "dispatcher" | "logger">> | false;
  /** Logger, default JSON lines on stderr at level "info". */
  readonly logger?: Logger;
}

/**
 * RegisterManagementOptions configures Actions.registerManagement.
 */
export interface RegisterManagementOptions {
  /**
   * Interceptors of the ActionService, run after the bearer authentication
   * of `adminTokens` (if any). Default none. The router's own interceptors do
   * not apply to the ActionService, so that no execution can ever intercept
   * the API that manages executions.
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
   * zitadel.action.v2beta and zitadel.action.v2, on `router`, with bearer
   * authentication when adminTokens were given and strict JSON (unknown
   * fields are Code.InvalidArgument). Throws Code.FailedPrecondition when
   * there are neither adminTokens nor interceptors: an open management API
   * is never what anyone wants.
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
   */
  close(): Promise<void>;
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
  const logger = options.logger ?? createJsonLogger();
  const { store } = options;
  const eventQueue = options.eventQueue ?? createMemoryEventQueue();
  const deliveryLog = options.deliveryLog ?? createMemoryDeliveryLog();
  const endpointGuard = options.endpointGuard ?? createEndpointGuard();
  const onCall = options.dispatcher?.onCall;
  const signingKeys = options.signingKeys ?? createMemorySigningKeySource();
  const dispatcher = createTargetDispatcher({
    ...options.dispatcher,
    logger,
    endpointGuard,
    signingKeys,
    onCall: (record) => {
      deliveryLog.record(record);
      onCall?.(record);
    },
  });
  const planner = createExecutionPlanner(store, {
    onStaleError: (error) => logger.error("store unreadable, using the previous execution plan", { error }),
  });
  const interceptor = createActionsInterceptor({
    planner,
    dispatcher,
    logger,
    resolveContext: options.resolveContext,
    resolveInstance: options.resolveInstance,
    instanceID: options.instanceID,
  });
  const publisher = createEventPublisher({ planner, queue: eventQueue });
  const runner = createFunctionRunner({ planner, dispatcher, logger });
  const worker =
    options.worker === false ? undefined : createEventWorker({ ...options.worker, queue: eventQueue, planner, dispatcher, logger });
  worker?.start();
  const auth = options.adminTokens === undefined ? undefined : createBearerAuthInterceptor({ tokens: options.adminTokens });
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
      const interceptors = [...(auth === undefined ? [] : [auth]), ...(registerOptions.interceptors ?? [])];
      if (interceptors.length === 0) {
        throw new ConnectError(
          "registerManagement needs adminTokens or interceptors that authenticate callers",
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
      });
      const serviceOptions = { interceptors, jsonOptions: { ignoreUnknownFields: false } };
      router.service(ActionServiceV2beta, impl, serviceOptions);
      router.service(ActionServiceV2, impl, serviceOptions);
    },
    close() {
      closing ??= (async () => {
        await worker?.stop();
        planner.close();
        await dispatcher.close();
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
