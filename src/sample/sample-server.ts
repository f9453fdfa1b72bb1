import type { Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { UserService } from "../../gen/zitadel/user/v2/user_service_pb.js";
import type { ActionStore } from "../action-store.js";
import { createActionsInterceptor } from "../actions-interceptor.js";
import { type CallerContext, callerContextKey } from "../caller-context.js";
import { createExecutionPlanner } from "../execution-planner.js";
import { type Logger, createJsonLogger } from "../logger.js";
import { createMemoryStore } from "../memory-store.js";
import { createTargetDispatcher, type TargetDispatcher } from "../target-dispatcher.js";
import { listenCleartext } from "./cleartext-server.js";
import { createUserService } from "./user-service.js";

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
  /** Sends target calls, default a new dispatcher. */
  readonly dispatcher?: TargetDispatcher;
  /** The instance ID in payloads, default "sample-instance". */
  readonly instanceID?: string;
  /** Logger, default JSON lines on stderr at level "info". */
  readonly logger?: Logger;
}

/**
 * SampleServer is a running sample: zitadel.user.v2.UserService behind the
 * actions interceptor, over Connect, gRPC and gRPC-web on one cleartext port.
 */
export interface SampleServer {
  /** Base URL, "http://host:port". */
  readonly url: string;
  readonly port: number;
  readonly store: ActionStore;
  readonly dispatcher: TargetDispatcher;
  /** close stops the server, then waits for async target calls. */
  close(): Promise<void>;
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
 * startSampleServer starts the sample server and resolves once it listens.
 */
export async function startSampleServer(options: SampleServerOptions = {}): Promise<SampleServer> {
  const logger = options.logger ?? createJsonLogger();
  const store = options.store ?? createMemoryStore();
  const dispatcher = options.dispatcher ?? createTargetDispatcher({ logger });
  const instanceID = options.instanceID ?? "sample-instance";
  const planner = createExecutionPlanner(store, {
    onStaleError: (error) => logger.error("store unreadable, using the previous execution plan", { error }),
  });
  const handler = connectNodeAdapter({
    routes: (router) => {
      router.service(UserService, createUserService());
    },
    interceptors: [sampleContext(instanceID), createActionsInterceptor({ planner, dispatcher, logger })],
  });
  const listener = await listenCleartext(handler, { port: options.port, host: options.host });
  const host = options.host ?? "127.0.0.1";
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${listener.port}`,
    port: listener.port,
    store,
    dispatcher,
    async close() {
      await listener.close();
      planner.close();
      await dispatcher.close();
    },
  };
}
