import { Code, ConnectError, type ConnectRouter, type ContextValues } from "@connectrpc/connect";
import type { UniversalHandler, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { type Logger, createJsonLogger } from "../logger.js";
import { createRestGateway, type RestGateway, type RestRequestAdapter, restErrorResponse } from "./rest-gateway.js";

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
 */
export function createNodeRouterHandler(options: NodeRouterHandlerOptions): NodeRouterHandler {
  const logger = options.logger ?? createJsonLogger();
  const paths = new Map<string, UniversalHandler>();
  for (const handler of options.router.handlers) {
    paths.set(handler.requestPath, handler);
  }
  const restGateway = options.rest === false ? undefined : createRestGateway({ handlers: options.router.handlers, adaptRequest: options.adaptRequest });
  const notFound = async (): Promise<UniversalServerResponse> => ({ status: 404 });

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
    const run = rpc ?? (restGateway === undefined ? notFound : restGateway.handle);
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
