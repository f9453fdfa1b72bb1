import { randomBytes } from "node:crypto";
import pg from "pg";
import { Code, ConnectError, createConnectRouter, type HandlerContext, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
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
import { createHostInstanceResolver, hostNameOf, type RequestAddress } from "../host-instance.js";
import { createNodeRouterHandler, type NodeServerRequest } from "../management/node-router-handler.js";
import { createPostgresDeliveryLog } from "../postgres/delivery-log.js";
import { createPostgresEventQueue } from "../postgres/event-queue.js";
import { createPostgresHealthCheck } from "../postgres/health-check.js";
import { createPostgresOutbox } from "../postgres/outbox.js";
import { createPostgresSigningKeySource } from "../postgres/signing-key-source.js";
import { createPostgresStore } from "../postgres/store.js";
import { createJwksHandler, jwksPath } from "../keys/jwks-handler.js";
import { createMemorySigningKeySource, type SigningKeySource } from "../keys/signing-key-source.js";
import { createActions } from "../setup.js";
import type { ActionStore, InstanceStore } from "../store/action-store.js";
import { createMemoryDeliveryLog, type DeliveryLog } from "../store/delivery-log.js";
import { createMemoryStore } from "../store/memory-store.js";
import { listenCleartext } from "./cleartext-server.js";
import { createGuideCompatAdapters } from "./guide-compat.js";
import { createSampleMetrics, metricsPath } from "./metrics.js";
import { createUserService, type UserEvent, userEventTypes } from "./user-service.js";
import { createMemoryUserStore, createPostgresUserStore, type PostgresUserStores, type SampleUserStore } from "./user-store.js";
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
  /**
   * The default instance: of requests to hosts that are not in
   * instanceTokens (localhost, 127.0.0.1, ...), default "sample-instance".
   */
  readonly instanceID?: string;
  /**
   * The sample's other instances, one per host name (the instance ID is the
   * host name, for example "a.localhost"), each with its own management
   * token: host name -> token. Requests to that host (the Host header or
   * HTTP/2 authority, without the port) use that instance: its executions,
   * events, functions and users; its token manages that instance only.
   * Default none. See parseInstanceTokens for ACTIONS_INSTANCE_TOKENS.
   */
  readonly instanceTokens?: Readonly<Record<string, string>>;
  /** Logger, default JSON lines on stderr at level "info". */
  readonly logger?: Logger;
  /**
   * System token of the management API (the ActionService v2beta and v2),
   * which manages any instance: the one of the host it calls. Default a new
   * random one (see generateAdminToken).
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
  /** The signing keys of JWT and JWE payloads (their JWKS is served at /oauth/v2/keys), default new memory ones. */
  readonly signingKeys?: SigningKeySource;
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
 * sampleSecretFields are the JSON keys whose values the sample leaves out of
 * the excerpts of its delivery log: "password", "secret" and "token", at any
 * depth, in any case.
 */
export const sampleSecretFields: readonly string[] = ["password", "secret", "token"];

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
  /** The targets and executions of the sample's default instance (instanceID). */
  readonly store: InstanceStore;
  /** The default instance: of requests to hosts that are not in instanceTokens. */
  readonly instanceID: string;
  /** The instance of a request to a host name: its own for the hosts of instanceTokens, else the default one. */
  instanceOfHost(host: string): string;
  /** The whole store, every instance. */
  readonly actionStore: ActionStore;
  readonly dispatcher: TargetDispatcher;
  /** The bearer token of the management API. */
  readonly adminToken: string;
  readonly deliveryLog: DeliveryLog;
  readonly eventQueue: EventQueue;
  /** The signing keys of JWT and JWE payloads, whose JWKS the sample serves at /oauth/v2/keys. */
  readonly signingKeys: SigningKeySource;
  /**
   * users returns the sample's users of an instance (default instanceID): in
   * PostgreSQL with databaseUrl (written in one transaction with their
   * events), else in memory.
   */
  users(instanceId?: string): SampleUserStore;
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
 * sampleContext is the sample's way of knowing the caller: the instance from
 * `instanceOf` (a fixed ID, or a function of the request such as a host
 * resolver), the organization from the `x-zitadel-orgid` header (as ZITADEL
 * does), the user from `x-zitadel-user`. A real service takes them from a
 * verified token.
 */
export function sampleContext(instanceOf: string | ((req: RequestAddress) => string)): Interceptor {
  return (next) => (req) => {
    const context: CallerContext = {
      instanceID: typeof instanceOf === "string" ? instanceOf : instanceOf(req),
      orgID: req.header.get("x-zitadel-orgid") ?? "",
      userID: req.header.get("x-zitadel-user") ?? "",
    };
    req.contextValues.set(callerContextKey, context);
    return next(req);
  };
}

/**
 * connectPostgres opens one pool and the PostgreSQL store, event queue,
 * delivery log and signing keys on it.
 */
async function connectPostgres(connectionString: string, logger: Logger) {
  const pool = new pg.Pool({ connectionString, connectionTimeoutMillis: 10_000, max: 20 });
  // A connection that drops while idle (a restart, a terminated backend) must not end the process.
  pool.on("error", (error) => logger.warn("postgres: idle connection failed", { error }));
  try {
    const store = await createPostgresStore({ pool, logger });
    const eventQueue = await createPostgresEventQueue({ pool, logger });
    const deliveryLog = await createPostgresDeliveryLog({ pool, logger });
    const signingKeys = await createPostgresSigningKeySource({ pool, logger });
    return {
      pool,
      store,
      eventQueue,
      deliveryLog,
      signingKeys,
      /** end ends the pool, once the store, queue and log are closed. */
      end: () => pool.end(),
    };
  } catch (error) {
    await pool.end();
    throw error;
  }
}

/**
 * hostKey returns a host name of instanceTokens as the sample's instance ID:
 * lower case, without a trailing dot. Throws a ConnectError with
 * Code.InvalidArgument for a host with a port or a path.
 */
function hostKey(host: string): string {
  const name = hostNameOf(host);
  if (name === undefined || /:\d*$/.test(host.trim())) {
    throw new ConnectError(`instanceTokens: "${host}" is not a host name (no port, no path)`, Code.InvalidArgument);
  }
  return name;
}

/** nodeRequestAddress returns the RequestAddress of a Node.js request: its authority (Host or :authority) and headers. */
function nodeRequestAddress(req: NodeServerRequest): RequestAddress {
  return requestAddressOf({ headers: req.headers, authority: "authority" in req ? req.authority : undefined });
}

/** requestAddressOf returns the RequestAddress of a request's authority (`authority`, else the Host header). */
function requestAddressOf(req: { readonly headers: { readonly host?: string }; readonly authority?: string }): RequestAddress {
  const authority = req.authority ?? req.headers.host ?? "";
  return { url: authority === "" ? "" : `http://${authority}/`, header: new Headers() };
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
  const adminToken = options.adminToken ?? generateAdminToken();
  // Each host of instanceTokens is an instance of its own, named after the host; other hosts are instanceID.
  const instanceTokens = Object.fromEntries(Object.entries(options.instanceTokens ?? {}).map(([host, token]) => [hostKey(host), token]));
  if (Object.values(instanceTokens).includes(adminToken)) {
    throw new ConnectError("instanceTokens: an instance token must differ from the admin token", Code.InvalidArgument);
  }
  const instanceID = options.instanceID ?? "sample-instance";
  const instanceOf = createHostInstanceResolver({
    hosts: Object.fromEntries(Object.keys(instanceTokens).map((host) => [host, host])),
    fallback: instanceID,
  });
  const postgres = options.databaseUrl === undefined ? undefined : await connectPostgres(options.databaseUrl, logger);
  const eventQueue = options.eventQueue ?? postgres?.eventQueue ?? createMemoryEventQueue();
  const metrics = createSampleMetrics({ eventQueue, processMetrics: options.processMetrics });
  const actions = createActions({
    store: options.store ?? postgres?.store ?? createMemoryStore(),
    eventQueue,
    deliveryLog: options.deliveryLog ?? postgres?.deliveryLog ?? createMemoryDeliveryLog(),
    adminTokens: adminToken,
    instanceTokens,
    resolveInstance: instanceOf,
    instanceID,
    eventTypes: userEventTypes,
    endpointGuard: options.endpointGuard,
    signingKeys: options.signingKeys ?? postgres?.signingKeys ?? createMemorySigningKeySource(),
    // The console shows what targets got and answered, without the values of headers and secret fields.
    excerpts: { secretFields: sampleSecretFields },
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
    instanceID: event.instanceID,
    version: "v2",
    sequence: event.sequence,
    eventType: event.eventType,
    createdAt: event.createdAt,
    userID: event.creator,
    payload: event.payload,
    hops: event.hops,
  });
  let postgresUsers: PostgresUserStores | undefined;
  try {
    // With PostgreSQL (and its event queue), users and the deliveries of their events are written in one
    // transaction (the outbox pattern): an acknowledged write always gets its events, a failed one leaves nothing.
    postgresUsers =
      postgres !== undefined && eventQueue === postgres.eventQueue && options.actions !== false
        ? await createPostgresUserStore({
            pool: postgres.pool,
            outbox: createPostgresOutbox({ queue: postgres.eventQueue, publisher: actions.publisher }),
            toActionEvent,
          })
        : undefined;
  } catch (error) {
    await actions.close();
    await postgres?.end();
    throw error;
  }
  const checks: HealthCheck[] = postgres === undefined ? [] : [createPostgresHealthCheck({ pool: postgres.pool })];
  const health = createHealth({ checks, logger, intervalMs: options.healthIntervalMs });
  const context = sampleContext(instanceOf);
  const router = createConnectRouter({
    interceptors: [context, ...(options.actions === false ? [] : [actions.interceptor]), ...(options.interceptors ?? [])],
    acceptCompression: [compressionGzip, compressionBrotli],
    // As the REST gateway: no request message over 4 MiB, after decompression.
    readMaxBytes: 4 * 1024 * 1024,
  });
  // Each instance has its own users (and user service), made on its first request.
  const tenants = new Map<string, { users: SampleUserStore; impl: ServiceImpl<typeof UserService> }>();
  const tenant = (instanceId: string) => {
    let t = tenants.get(instanceId);
    if (t === undefined) {
      const users =
        postgresUsers?.forInstance(instanceId) ??
        createMemoryUserStore({
          onEvent: async (event) => {
            if (options.actions !== false) await actions.publisher.publish(toActionEvent(event));
          },
        });
      t = { users, impl: createUserService({ users }) };
      tenants.set(instanceId, t);
    }
    return t;
  };
  const perInstance = Object.fromEntries(
    UserService.methods.map((m) => [
      m.localName,
      (req: unknown, ctx: HandlerContext) =>
        (tenant(ctx.values.get(callerContextKey).instanceID ?? instanceID).impl as Record<string, (r: unknown, c: HandlerContext) => unknown>)[
          m.localName
        ]!(req, ctx),
    ]),
  ) as unknown as ServiceImpl<typeof UserService>;
  router.service(UserService, perInstance);
  // Health checks never run through the actions interceptor: no target can make the server look dead.
  router.service(HealthService, createGrpcHealthService(health, { services: [UserService.typeName] }), { interceptors: [] });
  // The ActionService manages the instance of its caller's token: the host's for ACTIONS_ADMIN_TOKEN.
  actions.registerManagement(router);
  const rpcAndRest = createNodeRouterHandler({ router, logger, adaptRequest: createGuideCompatAdapters(logger) });
  const userinfo =
    options.actions === false
      ? undefined
      : createUserinfoHandler({
          users: (instanceId) => tenant(instanceId).users,
          runner: actions.runner,
          logger,
          instanceId: (req) => instanceOf(nodeRequestAddress(req)),
        });
  const webConsole = createConsoleHandler({ basePath: "/console" }); // the web console, signed in with adminToken
  const probes = createHealthHandler(health); // /livez, /healthz, /readyz
  // The public keys that verify JWT payloads (and the JWTs inside JWE payloads), where ZITADEL serves them.
  // Each host's instance has keys of its own, as in ZITADEL.
  const jwks = createJwksHandler({ keys: actions.signingKeys, instanceOf: (req) => instanceOf(requestAddressOf(req)), logger });
  const handler: typeof rpcAndRest = Object.assign(
    (req: Parameters<typeof rpcAndRest>[0], res: Parameters<typeof rpcAndRest>[1]) => {
      const path = req.url?.split("?", 1)[0];
      if (probes.handles(req.url ?? "")) probes(req, res);
      else if (path === metricsPath) metrics.handler(req, res);
      else if (path === userinfoPath && userinfo !== undefined) userinfo(req, res);
      else if (path === jwksPath) jwks(req, res);
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
    instanceID,
    instanceOfHost: (host) => instanceOf({ url: `http://${host}/`, header: new Headers() }),
    actionStore: actions.store,
    dispatcher: actions.dispatcher,
    adminToken,
    deliveryLog: actions.deliveryLog,
    eventQueue,
    signingKeys: actions.signingKeys,
    users: (instanceId = instanceID) => tenant(instanceId).users,
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
