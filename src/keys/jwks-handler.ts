import type { IncomingHttpHeaders } from "node:http";
import { ConnectError } from "@connectrpc/connect";
import { restStatusFromCode } from "../http-status.js";
import { createJsonLogger, type Logger } from "../logger.js";
import { defaultInstanceId } from "../store/action-store.js";
import type { SigningKeySource } from "./signing-key-source.js";

/**
 * jwksPath is where ZITADEL serves the public keys of an instance, and where
 * the sample serves them: "/oauth/v2/keys".
 */
export const jwksPath = "/oauth/v2/keys";

/**
 * JwksRequest is what the handler reads of a request: an http.IncomingMessage
 * or http2.Http2ServerRequest.
 */
export interface JwksRequest {
  readonly method?: string;
  readonly url?: string;
  readonly headers: IncomingHttpHeaders;
}

/**
 * JwksResponse is what the handler uses of a response: an
 * http.ServerResponse or http2.Http2ServerResponse.
 */
export interface JwksResponse {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(): unknown;
  end(body: string): unknown;
}

/**
 * JwksHandlerOptions configures createJwksHandler.
 */
export interface JwksHandlerOptions {
  /** The signing keys whose public keys are served. */
  readonly keys: SigningKeySource;
  /**
   * The instance whose keys a request asks for (for example by its host),
   * default always "" (the default instance). A ConnectError it throws
   * becomes the status of its code, as on REST (see restStatusFromCode:
   * Code.NotFound 404, Code.InvalidArgument 400, ...).
   */
  readonly instanceOf?: (req: JwksRequest) => string;
  /** The Cache-Control max-age of answers, in seconds: default 60. */
  readonly maxAgeSeconds?: number;
  /** Where failures are logged, default JSON lines on stderr. */
  readonly logger?: Logger;
}

/**
 * createJwksHandler returns a Node.js request handler that serves the JWKS of
 * the request's instance, `{"keys": [...]}` (see SigningKeySource.publicKeys),
 * as ZITADEL serves its web keys at /oauth/v2/keys: targets verify JWT
 * payloads with it (verifyJwtPayload, or any JOSE library). GET and HEAD;
 * other methods are answered 405. It serves whatever path it is mounted at.
 */
export function createJwksHandler(options: JwksHandlerOptions): (req: JwksRequest, res: JwksResponse) => void {
  const instanceOf = options.instanceOf ?? (() => defaultInstanceId);
  const maxAge = options.maxAgeSeconds ?? 60;
  const logger = options.logger ?? createJsonLogger();
  const send = (res: JwksResponse, status: number, body: string, headers: Record<string, string>, head: boolean) => {
    res.writeHead(status, { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...headers });
    if (head) res.end();
    else res.end(body);
  };
  return (req, res) => {
    const head = req.method === "HEAD";
    if (req.method !== "GET" && !head) {
      send(res, 405, JSON.stringify({ error: "method not allowed" }), { allow: "GET, HEAD" }, false);
      return;
    }
    void (async () => {
      try {
        const jwks = await options.keys.publicKeys(instanceOf(req));
        send(res, 200, JSON.stringify({ keys: jwks.keys }), { "cache-control": `public, max-age=${maxAge}` }, head);
      } catch (e) {
        const error = ConnectError.from(e);
        const status = restStatusFromCode(error.code);
        if (status >= 500) logger.error("jwks: keys unavailable", { error: e });
        if (!res.headersSent) send(res, status, JSON.stringify({ error: error.rawMessage }), { "cache-control": "no-store" }, head);
      }
    })();
  };
}
