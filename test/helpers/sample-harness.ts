import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { ActionService as ActionServiceV2 } from "../../gen/zitadel/action/v2/action_service_pb.js";
import { ActionService as ActionServiceV2beta } from "../../gen/zitadel/action/v2beta/action_service_pb.js";
import { UserService } from "../../gen/zitadel/user/v2/user_service_pb.js";
import type { Logger } from "../../src/logger.js";
import { type SampleServer, type SampleServerOptions, startSampleServer } from "../../src/sample/sample-server.js";
import type { TargetCallRecord } from "../../src/dispatch/target-dispatcher.js";
import { startTargetServer, type TargetServer } from "./target-server.js";

export type Protocol = "connect" | "grpc" | "grpc-web";
export type ApiVersion = "v2beta" | "v2";

/** The v2 client type; the v2beta client has the same methods and shapes. */
export type ActionClient = Client<typeof ActionServiceV2>;

export interface RestAnswer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: any;
}

/**
 * A running sample server (memory store, recorded target calls, kept logs),
 * a loopback target server and clients of both.
 */
export interface SampleHarness {
  readonly server: SampleServer;
  readonly targets: TargetServer;
  readonly records: TargetCallRecord[];
  readonly logs: { level: string; message: string; attributes?: Record<string, unknown> }[];
  /** An ActionService client; token default the admin token, null for none. */
  actions(version?: ApiVersion, protocol?: Protocol, token?: string | null): ActionClient;
  users(protocol?: Protocol): Client<typeof UserService>;
  /** A REST call with fetch; `body` objects are sent as JSON, strings as they are. */
  rest(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<RestAnswer>;
  /** The Authorization header of the admin. */
  readonly auth: Record<string, string>;
  close(): Promise<void>;
}

export const adminToken = "test-admin-token-0123456789";

export async function startSampleHarness(options: Partial<SampleServerOptions> = {}): Promise<SampleHarness> {
  const targets = await startTargetServer();
  const records: TargetCallRecord[] = [];
  const logs: SampleHarness["logs"] = [];
  const keep = (level: string) => (message: string, attributes?: Record<string, unknown>) => {
    logs.push({ level, message, attributes });
  };
  const logger: Logger = { debug: keep("debug"), info: keep("info"), warn: keep("warn"), error: keep("error") };
  const server = await startSampleServer({ logger, onCall: (r) => records.push(r), adminToken, ...options });
  const transports = new Map<string, Transport>();
  const transport = (protocol: Protocol, token: string | null): Transport => {
    const key = `${protocol} ${token}`;
    let t = transports.get(key);
    if (t === undefined) {
      const interceptors: Interceptor[] =
        token === null
          ? []
          : [
              (next) => (req) => {
                req.header.set("authorization", `Bearer ${token}`);
                return next(req);
              },
            ];
      t =
        protocol === "connect"
          ? createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", interceptors })
          : protocol === "grpc"
            ? createGrpcTransport({ baseUrl: server.url, interceptors })
            : createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1", interceptors });
      transports.set(key, t);
    }
    return t;
  };
  return {
    server,
    targets,
    records,
    logs,
    auth: { authorization: `Bearer ${server.adminToken}` },
    actions(version = "v2", protocol = "connect", token = server.adminToken) {
      const service = version === "v2" ? ActionServiceV2 : ActionServiceV2beta;
      return createClient(service, transport(protocol, token)) as unknown as ActionClient;
    },
    users: (protocol = "connect") => createClient(UserService, transport(protocol, null)),
    async rest(method, path, body, headers = {}) {
      const init: RequestInit = { method, headers: { ...headers } };
      if (body !== undefined) {
        init.body = typeof body === "string" ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)["content-type"] ??= "application/json";
      }
      const res = await fetch(server.url + path, init);
      const text = await res.text();
      let json: unknown;
      try {
        json = text === "" ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    async close() {
      await server.close();
      await targets.close();
    },
  };
}
