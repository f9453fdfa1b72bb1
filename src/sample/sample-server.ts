import { randomBytes } from "node:crypto";
import pg from "pg";
import { createConnectRouter, type Interceptor } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { Health as HealthService } from "../../gen/grpc/health/v1/health_pb.js";
import { UserService } from "../../gen/zitadel/user/v2/user_service_pb.js";
import { type CallerContext, callerContextKey } from "../caller-context.js";
import { createConsoleHandler } from "../console/console-handler.js";
import type { EndpointGuard } from "../dispatch/endpoint-guard.js";
import type { TargetCallRecord, TargetDispatcher } from "../dispatch/target-dispatcher.js";
import type { EventQueue } from "../events/event-queue.js";
import type { EventWorkerOptions } from "../events/event-worker.js";
import { createMemoryEventQueue } from "../events/memory-event-queue.js";
import { createGrpcHealthService } from "../health/grpc-health.js";
import { createHealth, type Health, type HealthCheck } from "../health/health.js";
import { createHealthHandler } from "../health/health-handler.js";
import { createJsonLogger, type Logger } from "../logger.js";
import { createNodeRouterHandler } from "../management/node-router-handler.js";
import { createPostgresDeliveryLog } from "../postgres/delivery-log.js";
import { createPostgresEventQueue } from "../postgres/event-queue.js";
import { createPostgresHealthCheck } from "../postgres/health-check.js";
import { createPostgresOutbox } from "../postgres/outbox.js";
import { createPostgresStore } from "../postgres/store.js";
import { createActions } from "../setup.js";
import type { ActionStore, InstanceStore } from "../store/action-store.js";
import { createMemoryDeliveryLog, type DeliveryLog } from "../store/delivery-log.js";
import { createMemoryStore } from "../store/memory-store.js";
import { listenCleartext } from "./cleartext-server.js";
import { createGuideCompatAdapters } from "./guide-compat.js";
import { createSampleMetrics, metricsPath } from "./metrics.js";
import { createUserService, type UserEvent, userEventTypes } from "./user-service.js";
import { createMemoryUserStore, createPostgresUserStore, type SampleUserStore } from "./user-store.js";
import { createUserinfoHandler, userinfoPath } from "./userinfo.js";

/**
 * SampleServerOptions configures startSampleServer.
 */
export interface SampleServerOptions {
  /** Port, default 0 (any free port). */
  readonly port?: number;
  /** Host, default "127.0.0.1". */
  readonly host?: string;
  /** Where targets and executions live, default a new memory store. */
  readonly store?: ActionStore;
  /** Called after every target call (after the metrics and the delivery log), default nothing. */
  readonly onCall?: (record: TargetCallRecord) => void;
  /** The instance ID in payloads, default "sample-instance". */
  readonly instanceID?: string;
  /** Logger, default JSON lines on stderr at level "info". */
  readonly logger?: Logger;
  /**
   * Bearer token of the management API (the ActionService v2beta and v2),
   * default a new random one (see generateAdminToken).
   */
  readonly adminToken?: string;
  /**
   * Run actions, default true. False serves the same services without the
   * actions interceptor, events and functions (for example as a benchmark baseline).
   */
  readonly actions?: boolean;
  /** More interceptors, run after the actions interceptor (closest to the handlers), default none. */
  readonly interceptors?: readonly Interceptor[];
  /**
   * PostgreSQL connection string. When set, the store, the event queue and the
   * delivery log that are not given are PostgreSQL ones sharing one pool, so
   * several sample servers can share the database. Default: all in memory.
   */
  readonly databaseUrl?: string;
  /** Where target calls are recorded, default a new memory delivery log. */
  readonly deliveryLog?: DeliveryLog;
  /** Where event deliveries wait, default a new memory event queue. */
  readonly eventQueue?: EventQueue;
  /** Keeps target calls away from denied addresses, default createEndpointGuard() (strict when NODE_ENV is "production"). */
  readonly endpointGuard?: EndpointGuard;
  /** Report Node.js process metrics on /metrics, default true. */
  readonly processMetrics?: boolean;
  /** Options of the event worker (concurrency, retry policy, max age, ...), default its defaults. */
  readonly eventWorker?: Partial<Omit<EventWorkerOptions, "queue" | "planner" | "dispatcher">>;
  /** Loop protection, see ActionsOptions.maxHops; default defaultMaxHops (1). */
  readonly maxHops?: number;
  /** How often readiness checks the database, default 2 000 ms (see createHealth). */
  readonly healthIntervalMs?: number;
}

/**
 * SampleShutdownOptions configures SampleServer.shutdown.
 */
export interface SampleShutdownOptions {
  /**
   * How long requests and event deliveries in flight may take to finish,
   * default 25 000 ms (Kubernetes kills a pod 30 s after SIGTERM).
   */
  readonly graceMs?: number;
  /** How often progress is logged while waiting, default 1 000 ms. */
  readonly progressIntervalMs?: number;
}

/**
 * SampleServer is a running sample on one cleartext port, over Connect, gRPC,
 * gRPC-web and REST (the google.api.http paths of ZITADEL):
 *
 * - zitadel.user.v2.UserService behind the actions interceptor, and
 * - the management API, zitadel.action.v2beta.ActionService and
 *   zitadel.action.v2.ActionService, which needs `Authorization: Bearer
 *   <adminToken>` and is never intercepted by executions.
 */
export interface SampleServer {
  /** Base URL, "http://host:port". */
  readonly url: string;
  readonly port: number;
  /** The targets and executions of the sample's instance (instanceID). */
  readonly store: InstanceStore;
  /** The whole store, every instance. */
  readonly actionStore: ActionStore;
  readonly dispatcher: TargetDispatcher;
  /** The bearer token of the management API. */
  readonly adminToken: string;
  readonly deliveryLog: DeliveryLog;
  readonly eventQueue: EventQueue;
  /**
   * The sample's users: in PostgreSQL with databaseUrl (written in one
   * transaction with their events), else in memory.
   */
  readonly users: SampleUserStore;
  /** Liveness and readiness (GET /livez, /healthz, /readyz and grpc.health.v1.Health). */
  readonly health: Health;
  /** close stops the server at once (open requests end), then waits for async target calls and deliveries. */
  close(): Promise<void>;
  /**
   * shutdown stops the server gracefully, logging its progress: readiness
   * turns false and no connection is accepted; the requests in flight
   * (including those waiting for a request-phase target) and the event
   * deliveries in flight get the grace period to finish; what still runs
   * then is cancelled (cancelled deliveries are released at once, so another
   * replica takes them over); then everything is closed. Calling it again,
   * or close(), while it runs waits for the same end.
   */
  shutdown(options?: SampleShutdownOptions): Promise<void>;
}

/**
 * sampleContext is the sample's way of knowing the caller: the organization
 * from the `x-zitadel-orgid` header (as ZITADEL does), the user from
 * `x-zitadel-user`. A real service takes them from a verified token.
 */
export function sampleContext(instanceID: string): Interceptor {
  return (next) => (req) => {
    const context: CallerContext = {
      instanceID,
      orgID: req.header.get("x-zitadel-orgid") ?? "",
      userID: req.header.get("x-zitadel-user") ?? "",
    };
    req.contextValues.set(callerContextKey, context);
    return next(req);
  };
}

/**
 * connectPostgres opens one pool and the PostgreSQL store, event queue and
 * delivery log on it (migrating the schema once).
 */
async function connectPostgres(connectionString: string, logger: Logger) {
  const pool = new pg.Pool({ connectionString, connectionTimeoutMillis: 10_000, max: 20 });
  // A connection that drops while idle (a restart, a terminated backend) must not end the process.
  pool.on("error", (error) => logger.warn("postgres: idle connection failed", { error }));
  try {
    const store = await createPostgresStore({ pool, logger });
    const eventQueue = await createPostgresEventQueue({ pool, logger });
    const deliveryLog = await createPostgresDeliveryLog({ pool, logger });
    return {
      pool,
      store,
      eventQueue,
      deliveryLog,
      /** end ends the pool, once the store, queue and log are closed. */
      end: () => pool.end(),
    };
  } catch (error) {
    await pool.end();
    throw error;
  }
}

/**
 * generateAdminToken returns a new random admin token: 32 random bytes, base64url.
 */
export function generateAdminToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * startSampleServer starts the sample server and resolves once it listens.
 * It is the short example of createActions: the UserService behind the
 * caller context and the actions interceptor, the ActionService registered
 * with bearer authentication, events from the UserService's changes, and the
 * preuserinfo function behind /oidc/v1/userinfo.
 */
export async function startSampleServer(options: SampleServerOptions = {}): Promise<SampleServer> {
  const logger = options.logger ?? createJsonLogger();
  const postgres = options.databaseUrl === undefined ? undefined : await connectPostgres(options.databaseUrl, logger);
  const eventQueue = options.eventQueue ?? postgres?.eventQueue ?? createMemoryEventQueue();
  const metrics = createSampleMetrics({ eventQueue, processMetrics: options.processMetrics });
  const instanceID = options.instanceID ?? "sample-instance";
  const adminToken = options.adminToken ?? generateAdminToken();
  const actions = createActions({
    store: options.store ?? postgres?.store ?? createMemoryStore(),
    eventQueue,
    deliveryLog: options.deliveryLog ?? postgres?.deliveryLog ?? createMemoryDeliveryLog(),
    adminTokens: adminToken,
    eventTypes: userEventTypes,
    endpointGuard: options.endpointGuard,
    dispatcher: {
      onCall: (record) => {
        metrics.record(record);
        options.onCall?.(record);
      },
    },
    worker: options.actions === false ? false : options.eventWorker,
    logger,
    maxHops: options.maxHops,
  });
  const toActionEvent = (event: UserEvent) => ({
    aggregateID: event.aggregateID,
    aggregateType: event.aggregateType,
    resourceOwner: event.resourceOwner,
    instanceID,
    version: "v2",
    sequence: event.sequence,
    eventType: event.eventType,
    createdAt: event.createdAt,
    userID: event.creator,
    payload: event.payload,
  });
  let users: SampleUserStore;
  try {
    // With PostgreSQL (and its event queue), users and the deliveries of their events are written in one
    // transaction (the outbox pattern): an acknowledged write always gets its events, a failed one leaves nothing.
    users =
      postgres !== undefined && eventQueue === postgres.eventQueue && options.actions !== false
        ? await createPostgresUserStore({
            pool: postgres.pool,
            outbox: createPostgresOutbox({ queue: postgres.eventQueue, publisher: actions.publisher }),
            toActionEvent,
          })
        : createMemoryUserStore({
            onEvent: async (event) => {
              if (options.actions !== false) await actions.publisher.publish(toActionEvent(event));
            },
          });
  } catch (error) {
    await actions.close();
    await postgres?.end();
    throw error;
  }
  const checks: HealthCheck[] = postgres === undefined ? [] : [createPostgresHealthCheck({ pool: postgres.pool })];
  const health = createHealth({ checks, logger, intervalMs: options.healthIntervalMs });
  const context = sampleContext(instanceID);
  const router = createConnectRouter({
    interceptors: [context, ...(options.actions === false ? [] : [actions.interceptor]), ...(options.interceptors ?? [])],
    acceptCompression: [compressionGzip, compressionBrotli],
    // As the REST gateway: no request message over 4 MiB, after decompression.
    readMaxBytes: 4 * 1024 * 1024,
  });
  router.service(UserService, createUserService({ users }));
  // Health checks never run through the actions interceptor: no target can make the server look dead.
  router.service(HealthService, createGrpcHealthService(health, { services: [UserService.typeName] }), { interceptors: [] });
  // The ActionService manages the targets and executions of the caller's instance.
  actions.registerManagement(router, { interceptors: [context] });
  const rpcAndRest = createNodeRouterHandler({ router, logger, adaptRequest: createGuideCompatAdapters(logger) });
  const userinfo =
    options.actions === false ? undefined : createUserinfoHandler({ users, runner: actions.runner, logger, instanceId: instanceID });
  const webConsole = createConsoleHandler({ basePath: "/console" }); // the web console, signed in with adminToken
  const probes = createHealthHandler(health); // /livez, /healthz, /readyz
  const handler: typeof rpcAndRest = Object.assign(
    (req: Parameters<typeof rpcAndRest>[0], res: Parameters<typeof rpcAndRest>[1]) => {
      const path = req.url?.split("?", 1)[0];
      if (probes.handles(req.url ?? "")) probes(req, res);
      else if (path === metricsPath) metrics.handler(req, res);
      else if (path === userinfoPath && userinfo !== undefined) userinfo(req, res);
      else if (webConsole.handles(req.url ?? "")) webConsole(req, res);
      else rpcAndRest(req, res);
    },
    { restGateway: rpcAndRest.restGateway },
  );
  let listener: Awaited<ReturnType<typeof listenCleartext>>;
  try {
    await health.check();
    listener = await listenCleartext(handler, { port: options.port, host: options.host });
  } catch (error) {
    health.close();
    await actions.close();
    await postgres?.end();
    throw error;
  }
  const host = options.host ?? "127.0.0.1";
  let stopping: Promise<void> | undefined;

  const shutdown = async (shutdownOptions: SampleShutdownOptions = {}) => {
    const graceMs = shutdownOptions.graceMs ?? 25_000;
    const started = Date.now();
    const deadline = new AbortController();
    const graceTimer = setTimeout(() => deadline.abort(), graceMs);
    const inFlight = () => ({
      requests: listener.inFlight(),
      deliveries: actions.worker?.inFlight() ?? 0,
    });
    // Not ready and accepting no connections first (both at once, in this tick), then say so.
    health.drain();
    const requestsDone = listener.shutdown(deadline.signal);
    const deliveriesDone = actions.worker?.stop({ signal: deadline.signal });
    logger.info("shutting down: not ready, accepting no connections, letting what is in flight finish", { graceMs, ...inFlight() });
    const progress = setInterval(() => {
      logger.info("shutting down: waiting", { ...inFlight(), remainingMs: Math.max(0, graceMs - (Date.now() - started)) });
    }, shutdownOptions.progressIntervalMs ?? 1000);
    const onDeadline = () => logger.warn("shutting down: grace period over, cancelling what still runs", { graceMs, ...inFlight() });
    deadline.signal.addEventListener("abort", onDeadline, { once: true });
    try {
      await Promise.all([requestsDone, deliveriesDone]);
      logger.info("shutting down: requests and deliveries done, closing", { ...inFlight() });
      await actions.close({ signal: deadline.signal });
      health.close();
      await postgres?.end();
      logger.info("shut down", { durationMs: Date.now() - started });
    } finally {
      clearInterval(progress);
      clearTimeout(graceTimer);
      deadline.signal.removeEventListener("abort", onDeadline);
    }
  };
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${listener.port}`,
    port: listener.port,
    store: actions.store.forInstance(instanceID),
    actionStore: actions.store,
    dispatcher: actions.dispatcher,
    adminToken,
    deliveryLog: actions.deliveryLog,
    eventQueue,
    users,
    health,
    close() {
      stopping ??= (async () => {
        health.drain();
        await listener.close();
        await actions.close();
        health.close();
        await postgres?.end();
      })();
      return stopping;
    },
    shutdown(shutdownOptions) {
      stopping ??= shutdown(shutdownOptions);
      return stopping;
    },
  };
}
