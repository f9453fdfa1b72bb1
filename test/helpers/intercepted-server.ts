import { type Client, createClient, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { UserService } from "../../gen/zitadel/user/v2/user_service_pb.js";
import type { HumanUser, User } from "../../gen/zitadel/user/v2/user_pb.js";
import type { ActionStore, InstanceStore } from "../../src/store/action-store.js";
import { type ActionsInterceptorOptions, createActionsInterceptor } from "../../src/actions-interceptor.js";
import { createExecutionPlanner } from "../../src/plan/execution-planner.js";
import { type Logger, silentLogger } from "../../src/logger.js";
import { createMemoryStore } from "../../src/store/memory-store.js";
import { listenCleartext } from "../../src/sample/cleartext-server.js";
import { sampleContext } from "../../src/sample/sample-server.js";
import { createUserService } from "../../src/sample/user-service.js";
import { createTargetDispatcher, type TargetCallRecord, type TargetDispatcher } from "../../src/dispatch/target-dispatcher.js";

export type Protocol = "connect" | "grpc" | "grpc-web";
export const protocols: readonly Protocol[] = ["connect", "grpc", "grpc-web"];

/**
 * A UserService on loopback behind the actions interceptor, with a memory store,
 * a dispatcher whose calls are recorded, and a log that is kept.
 */
export interface InterceptedServer {
  readonly url: string;
  /** The store of the calls' instance, "test-instance". */
  readonly store: InstanceStore;
  /** The whole store, every instance. */
  readonly actionStore: ActionStore;
  readonly dispatcher: TargetDispatcher;
  readonly records: TargetCallRecord[];
  readonly logs: { level: string; message: string; attributes?: Record<string, unknown> }[];
  transport(protocol: Protocol): Transport;
  client(protocol: Protocol): Client<typeof UserService>;
  close(): Promise<void>;
}

export async function startInterceptedServer(
  options: Partial<ActionsInterceptorOptions> = {},
): Promise<InterceptedServer> {
  const store = options.store ?? createMemoryStore();
  const records: TargetCallRecord[] = [];
  const logs: InterceptedServer["logs"] = [];
  const keep = (level: string) => (message: string, attributes?: Record<string, unknown>) => {
    logs.push({ level, message, attributes });
  };
  const logger: Logger = { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") };
  const dispatcher = options.dispatcher ?? createTargetDispatcher({ logger, onCall: (r) => records.push(r) });
  const planner = createExecutionPlanner(store);
  const handler = connectNodeAdapter({
    routes: (router) => router.service(UserService, createUserService()),
    interceptors: [
      sampleContext("test-instance"),
      createActionsInterceptor({ planner, dispatcher, logger, ...options, store: undefined }),
    ],
  });
  const listener = await listenCleartext(handler);
  const url = `http://127.0.0.1:${listener.port}`;
  const transports = new Map<Protocol, Transport>();
  const transport = (protocol: Protocol) => {
    let t = transports.get(protocol);
    if (t === undefined) {
      t =
        protocol === "connect"
          ? createConnectTransport({ baseUrl: url, httpVersion: "1.1" })
          : protocol === "grpc"
            ? createGrpcTransport({ baseUrl: url })
            : createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1" });
      transports.set(protocol, t);
    }
    return t;
  };
  return {
    url,
    store: store.forInstance("test-instance"),
    actionStore: store,
    dispatcher,
    records,
    logs,
    transport,
    client: (protocol) => createClient(UserService, transport(protocol)),
    async close() {
      await listener.close();
      planner.close();
      await dispatcher.close();
    },
  };
}

/** A minimal valid AddHumanUser request. */
export const addUser = (given = "Ada", family = "Lovelace", email = `ada.${Math.random().toString(36).slice(2)}@example.com`) => ({
  profile: { givenName: given, familyName: family },
  email: { email },
});

/** humanOf returns the human part of a user of the sample UserService, undefined for other users. */
export function humanOf(user: User | undefined): HumanUser | undefined {
  return user?.type.case === "human" ? user.type.value : undefined;
}
