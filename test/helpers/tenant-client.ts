// Clients that call a loopback server under host names such as a.localhost, as browsers and curl do
// (they resolve every *.localhost name to the loopback address): the URL, the Host header and the
// HTTP/2 :authority carry the host name, the connection goes to 127.0.0.1.
import type { LookupFunction } from "node:net";
import { type DescService, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { Agent, fetch as undiciFetch } from "undici";
import type { RestRoute } from "../../src/management/rest-gateway.js";

/** loopbackLookup resolves every host name to 127.0.0.1. */
export const loopbackLookup: LookupFunction = (_hostname, options, callback) => {
  if ((options as { all?: boolean }).all === true) {
    (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address: "127.0.0.1", family: 4 }]);
  } else {
    callback(null, "127.0.0.1", 4);
  }
};

/** loopbackAgent is an undici Agent that connects every host name to 127.0.0.1. */
export const loopbackAgent = new Agent({ connect: { lookup: loopbackLookup } });

export type TenantProtocol = "rest" | "connect" | "grpc" | "grpc-web";

/** The outcome of a call: "ok" with the answer as JSON, or the error's code and message. */
export type Outcome = { readonly code: "ok"; readonly json: any } | { readonly code: Code; readonly message: string };

/**
 * tenantCaller returns a function that calls any method of `service` on `http://<host>:<port>` over
 * `protocol`, with `Authorization: Bearer <token>` when a token is given, and resolves its outcome.
 * REST calls follow the method's google.api.http rule (from `routes`): path variables from the
 * request, the rest as the JSON body (body "*") or nothing.
 */
export function tenantCaller(options: {
  readonly port: number;
  readonly service: DescService;
  readonly routes: readonly RestRoute[];
}) {
  const transports = new Map<string, Transport>();
  const transportOf = (protocol: Exclude<TenantProtocol, "rest">, baseUrl: string, token: string | undefined): Transport => {
    const key = `${protocol} ${baseUrl} ${token}`;
    let transport = transports.get(key);
    if (transport === undefined) {
      const interceptors: Interceptor[] =
        token === undefined
          ? []
          : [
              (next) => (req) => {
                req.header.set("authorization", `Bearer ${token}`);
                return next(req);
              },
            ];
      transport =
        protocol === "connect"
          ? createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors, nodeOptions: { lookup: loopbackLookup } })
          : protocol === "grpc-web"
            ? createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors, nodeOptions: { lookup: loopbackLookup } })
            : createGrpcTransport({ baseUrl, interceptors, nodeOptions: { lookup: loopbackLookup } });
      transports.set(key, transport);
    }
    return transport;
  };
  return async (
    protocol: TenantProtocol,
    host: string,
    token: string | undefined,
    methodName: string,
    request: JsonValue = {},
  ): Promise<Outcome> => {
    const method = options.service.methods.find((m) => m.localName === methodName);
    if (method === undefined) throw new Error(`${options.service.typeName} has no method ${methodName}`);
    const baseUrl = `http://${host}:${options.port}`;
    if (protocol !== "rest") {
      const client = createClient(options.service, transportOf(protocol, baseUrl, token)) as unknown as Record<
        string,
        (req: unknown) => Promise<any>
      >;
      try {
        const answer = await client[methodName]!(fromJson(method.input, request));
        return { code: "ok", json: toJson(method.output, answer) };
      } catch (e) {
        const error = ConnectError.from(e);
        return { code: error.code, message: error.rawMessage };
      }
    }
    const route = options.routes.find((r) => r.method === method);
    if (route === undefined) throw new Error(`${methodName} has no REST route`);
    const rest = { ...(request as Record<string, JsonValue>) };
    const path = route.path.replace(/\{([a-z_]+)(=[^}]*)?\}/g, (_, field: string) => {
      const name = field.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
      const value = rest[name];
      delete rest[name];
      return encodeURIComponent(String(value ?? ""));
    });
    const headers: Record<string, string> = { accept: "application/json" };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    let body: string | undefined;
    if (route.body === "*") {
      body = JSON.stringify(rest);
      headers["content-type"] = "application/json";
    } else if (Object.keys(rest).length > 0) {
      throw new Error(`${methodName}: REST route ${route.path} takes no body, but the request has ${Object.keys(rest).join(", ")}`);
    }
    const res = await undiciFetch(baseUrl + path, { method: route.httpMethod, headers, body, dispatcher: loopbackAgent });
    const json = (await res.json()) as any;
    if (res.status === 200) return { code: "ok", json };
    return { code: json.code as Code, message: json.message as string };
  };
}
