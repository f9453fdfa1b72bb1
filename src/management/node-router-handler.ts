import { Code, ConnectError, type ConnectRouter, type ContextValues } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { type Logger, createJsonLogger } from "../logger.js";
import { checkFields, createRestGateway, type RestGateway, type RestRequestAdapter, restErrorResponse } from "./rest-gateway.js";

/** NodeServerRequest is a request of Node's http, https or http2 server. */
export type NodeServerRequest = Parameters<typeof universalRequestFromNodeRequest>[0];

/** NodeServerResponse is a response of Node's http, https or http2 server. */
export type NodeServerResponse = Parameters<typeof universalResponseToNodeResponse>[1];

/** NodeHandlerFn is a request listener of Node's http, https and http2 servers. */
export type NodeHandlerFn = (request: NodeServerRequest, response: NodeServerResponse) => void;

/**
 * NodeRouterHandlerOptions configures createNodeRouterHandler.
 */
export interface NodeRouterHandlerOptions {
  /**
   * The router to serve, with its services and interceptors registered, for
   * example `createConnectRouter({ interceptors })`. Build it with the
   * compression options you want: connectNodeAdapter's default is
   * `acceptCompression: [compressionGzip, compressionBrotli]`.
   */
  readonly router: ConnectRouter;
  /**
   * Serve the google.api.http REST routes of the router's methods through a
   * RestGateway on the same handlers. Default true; false serves 404 for
   * every path that is not an RPC path.
   */
  readonly rest?: boolean;
  /**
   * Adapters of the JSON of REST requests, passed to the RestGateway as its
   * `adaptRequest` option (see RestRequestAdapter). Default none; ignored
   * when `rest` is false.
   */
  readonly adaptRequest?: RestRequestAdapter | readonly RestRequestAdapter[];
  /** Context values of each request, default new ones. */
  readonly contextValues?: (request: NodeServerRequest) => ContextValues;
  /** Logger for handlers that fail unexpectedly, default JSON lines on stderr. */
  readonly logger?: Logger;
}

/**
 * NodeRouterHandler is a Node.js request handler (for http, https and http2
 * servers) with the RestGateway it uses.
 */
export interface NodeRouterHandler extends NodeHandlerFn {
  /** The REST gateway, undefined when `rest` is false. */
  readonly restGateway: RestGateway | undefined;
}

/**
 * createNodeRouterHandler serves a prebuilt ConnectRouter on Node.js: requests
 * to an RPC path ("/pkg.Service/Method") go to its handler (Connect, gRPC or
 * gRPC-web, as connectNodeAdapter does), all other requests to the REST
 * gateway. Both paths run the same handlers, so every interceptor of the
 * router (authentication, actions, ...) applies to REST calls too.
 *
 * A gRPC or gRPC-web request (content type application/grpc...) for a method
 * the router does not serve gets grpc-status 12 (UNIMPLEMENTED), "unknown
 * service ..." or "unknown method ... for service ...", as from a gRPC server,
 * instead of an HTTP 404.
 *
 * The JSON of a Connect unary request (POST, application/json, uncompressed,
 * at most 1 MiB) has its google.protobuf.Duration fields checked before it is
 * decoded, as the REST gateway does, so that a malformed duration is refused
 * with Code.InvalidArgument naming the field ("timeout: \"1.0000000001s\" is
 * not a duration: ...") rather than with the decoder's "Invalid count value".
 */
export function createNodeRouterHandler(options: NodeRouterHandlerOptions): NodeRouterHandler {
  const logger = options.logger ?? createJsonLogger();
  const paths = new Map<string, UniversalHandler>();
  for (const handler of options.router.handlers) {
    paths.set(handler.requestPath, handler);
  }
  const restGateway = options.rest === false ? undefined : createRestGateway({ handlers: options.router.handlers, adaptRequest: options.adaptRequest });
  const notFound = async (): Promise<UniversalServerResponse> => ({ status: 404 });
  const services = new Set(options.router.handlers.map((h) => h.service.typeName));

  const handler: NodeHandlerFn = (req, res) => {
    const path = req.url?.split("?", 2)[0] ?? "";
    const rpc = paths.get(path);
    let uReq: ReturnType<typeof universalRequestFromNodeRequest>;
    try {
      uReq = universalRequestFromNodeRequest(req, res, undefined, options.contextValues?.(req));
    } catch (reason) {
      // No usable authority (an HTTP/1.0 request without Host, a Host that is not one):
      // a bad request, never an exception that escapes the listener.
      const error = new ConnectError(`bad request: ${ConnectError.from(reason).rawMessage}`, Code.InvalidArgument);
      void universalResponseToNodeResponse(restErrorResponse(error), res).catch(() => res.destroy());
      return;
    }
    const contentType = String(req.headers["content-type"] ?? "");
    if (rpc === undefined && req.method === "POST" && /^application\/grpc(-web)?([+;]|$)/i.test(contentType)) {
      sendUnknownGrpcMethod(res, unknownGrpcMethod(path, contentType, services));
      return;
    }
    const run =
      rpc === undefined
        ? restGateway === undefined
          ? notFound
          : restGateway.handle
        : rpc.method.methodKind === "unary" && req.method === "POST" && /^application\/json(;|$)/i.test(contentType) && !req.headers["content-encoding"]
          ? (r: typeof uReq) => checkedConnectJson(rpc, r)
          : rpc;
    run(uReq)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) {
          return;
        }
        logger.error("request handler failed", {
          path,
          rpc: rpc === undefined ? undefined : `${rpc.service.typeName}/${rpc.method.name}`,
          error: reason instanceof Error ? reason.message : String(reason),
        });
        if (!res.headersSent) {
          res.writeHead(500);
        }
        res.end();
      });
  };
  return Object.assign(handler, { restGateway });
}

/** The largest Connect JSON body whose durations are checked before decoding; larger ones go to the decoder as they are. */
const maxCheckedJsonBytes = 1024 * 1024;

/**
 * checkedConnectJson reads the body of a Connect unary JSON request, checks
 * its durations (checkFields) and hands the same bytes to the handler, or
 * answers a Connect error naming the field.
 */
async function checkedConnectJson(rpc: UniversalHandler, req: Parameters<UniversalHandler>[0]): Promise<UniversalServerResponse> {
  const body = req.body;
  if (body === null || typeof body !== "object" || !(Symbol.asyncIterator in body)) return rpc(req);
  const chunks: Uint8Array[] = [];
  let size = 0;
  const iterator = (body as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  for (;;) {
    const next = await iterator.next();
    if (next.done === true) break;
    chunks.push(next.value);
    size += next.value.byteLength;
    if (size > maxCheckedJsonBytes) break;
  }
  const rest = async function* (): AsyncIterable<Uint8Array> {
    yield* chunks;
    if (size > maxCheckedJsonBytes) {
      for (;;) {
        const next = await iterator.next();
        if (next.done === true) return;
        yield next.value;
      }
    }
  };
  if (size <= maxCheckedJsonBytes) {
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      json = undefined; // the decoder explains what is wrong
    }
    if (json !== undefined) {
      try {
        checkFields(rpc.method.input, json as never, "", false);
      } catch (error) {
        return connectJsonError(ConnectError.from(error));
      }
    }
  }
  return rpc({ ...req, body: rest() });
}

/** connectJsonError is the response of the Connect protocol for a unary error: its HTTP status and the JSON error body. */
function connectJsonError(error: ConnectError): UniversalServerResponse {
  const body = errorToJsonBytes(error, undefined);
  return {
    status: codeToHttpStatus(error.code),
    header: new Headers({ "content-type": "application/json" }),
    body: (async function* () {
      yield body;
    })(),
  };
}

/**
 * unknownGrpcMethod is the trailers-only answer of a gRPC server to a method
 * it does not serve: HTTP 200, grpc-status 12 and a message as grpc-go writes it.
 */
function unknownGrpcMethod(path: string, contentType: string, services: ReadonlySet<string>): Headers {
  const match = /^\/([^/]+)\/([^/]+)$/.exec(path);
  const message =
    match === null
      ? `malformed method name: "${path}"`
      : services.has(match[1]!)
        ? `unknown method ${match[2]} for service ${match[1]}`
        : `unknown service ${match[1]}`;
  const web = /^application\/grpc-web/i.test(contentType);
  const header = new Headers({ "content-type": web ? "application/grpc-web+proto" : "application/grpc" });
  return setTrailerStatus(header, new ConnectError(message, Code.Unimplemented));
}

/**
 * sendUnknownGrpcMethod writes a trailers-only response: over HTTP/2 one
 * HEADERS frame that ends the stream (as gRPC clients require), over HTTP/1.1
 * (gRPC-web) the headers and an empty body.
 */
function sendUnknownGrpcMethod(res: NodeServerResponse, header: Headers): void {
  const headers: Record<string, string> = {};
  header.forEach((value, key) => (headers[key] = value));
  const stream = (res as { stream?: { respond(h: Record<string, string | number>, o: { endStream: boolean }): void; headersSent: boolean } }).stream;
  try {
    if (stream !== undefined && !stream.headersSent) {
      stream.respond({ ":status": 200, ...headers }, { endStream: true });
      return;
    }
    (res as { writeHead(status: number, headers: Record<string, string>): unknown }).writeHead(200, headers);
    res.end();
  } catch {
    res.destroy();
  }
}
