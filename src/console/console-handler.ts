import { Code, ConnectError } from "@connectrpc/connect";
import { asset, assetNamePattern, assetsVersion, type ConsoleAsset, consoleAssetsDir, loadConsoleAssets } from "./console-assets.js";

/**
 * ConsoleHandlerOptions configures createConsoleHandler.
 */
export interface ConsoleHandlerOptions {
  /**
   * The path the console is served under, default "/console": the page is
   * `<basePath>/` and its files are below `<basePath>/assets/`. A trailing "/"
   * is ignored; "/" serves the console at the root.
   */
  readonly basePath?: string;
  /**
   * Where the page sends its ActionService calls (the REST paths
   * `/v2/actions/...`), default "" (the origin that serves the console).
   * Either a path on the same origin ("/api") or an absolute http(s) URL
   * ("https://actions.example.com"); an absolute URL on another origin is
   * added to the page's Content-Security-Policy (`connect-src`), and that
   * origin must answer CORS requests with the Authorization header allowed.
   */
  readonly apiBaseUrl?: string;
  /**
   * The folder of the page's files, default the one shipped with the package
   * (consoleAssetsDir). Read once, when the handler is created.
   */
  readonly assetsDir?: string;
}

/**
 * ConsoleRequest is what the handler reads of a request: an
 * `http.IncomingMessage` or `http2.Http2ServerRequest` (of Node's http, https
 * and http2 servers, Express, Connect, ...).
 */
export interface ConsoleRequest {
  readonly url?: string | undefined;
  readonly method?: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * ConsoleResponse is what the handler uses of a response: an
 * `http.ServerResponse` or `http2.Http2ServerResponse`.
 */
export interface ConsoleResponse {
  writeHead(statusCode: number, headers: Record<string, string>): unknown;
  end(): unknown;
  end(chunk: Uint8Array): unknown;
}

/**
 * ConsoleHandler is a Node.js request handler (http, https or http2) serving
 * the console's static files. Requests outside its base path go to `next`
 * when one is given (as in Express or Connect middleware), else get 404.
 */
export interface ConsoleHandler {
  (request: ConsoleRequest, response: ConsoleResponse, next?: () => void): void;
  /** The normalized base path: "/console", or "" for the root. */
  readonly basePath: string;
  /** handles tells whether a request URL (path and query) belongs to the console. */
  handles(url: string): boolean;
}

/**
 * consoleSecurityHeaders returns the security headers of every console
 * response: a strict Content-Security-Policy (only the console's own scripts
 * and styles, no inline code, Trusted Types for the DOM, calls only to the
 * console's origin and `apiOrigin`), no framing, no sniffing, no referrer.
 */
export function consoleSecurityHeaders(apiOrigin?: string): Record<string, string> {
  const connect = apiOrigin === undefined ? "'self'" : `'self' ${apiOrigin}`;
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src ${connect}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join("; ");
  return {
    "content-security-policy": csp,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
  };
}

const immutable = "public, max-age=31536000, immutable";
const revalidate = "no-cache";

function escapeAttribute(value: string): string {
  return value.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function normalizeBasePath(value: string): string {
  const trimmed = value.replace(/\/+$/, "");
  if (trimmed !== "" && !/^(\/[A-Za-z0-9._~-]+)+$/.test(trimmed)) {
    throw new ConnectError(`basePath "${value}" must be "/" or a path of "/"-separated segments such as "/console"`, Code.InvalidArgument);
  }
  if (trimmed.split("/").some((segment) => segment === "." || segment === "..")) {
    throw new ConnectError(`basePath "${value}" must not have "." or ".." segments`, Code.InvalidArgument);
  }
  return trimmed;
}

function parseApiBaseUrl(value: string): { base: string; origin: string | undefined } {
  const trimmed = value.replace(/\/+$/, "");
  if (trimmed === "") return { base: "", origin: undefined };
  if (trimmed.startsWith("/") && !trimmed.startsWith("//")) {
    if (/[\s?#]/.test(trimmed)) throw new ConnectError(`apiBaseUrl "${value}" must be a path without query or fragment`, Code.InvalidArgument);
    return { base: trimmed, origin: undefined };
  }
  let url: URL;
  try {
    url = new URL(trimmed);
  } catch {
    throw new ConnectError(`apiBaseUrl "${value}" must be a path ("/api") or an absolute http(s) URL`, Code.InvalidArgument);
  }
  if ((url.protocol !== "http:" && url.protocol !== "https:") || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new ConnectError(`apiBaseUrl "${value}" must be an http(s) URL without credentials, query or fragment`, Code.InvalidArgument);
  }
  return { base: url.href.replace(/\/+$/, ""), origin: url.origin };
}

/**
 * createConsoleHandler returns a Node.js request handler serving the web
 * console of the ActionService: a static page (HTML, CSS and browser
 * JavaScript modules, no framework and no build step) that asks for the
 * management token and then manages targets and executions and shows the
 * delivery log and the given-up event deliveries, over the REST paths of the
 * ActionService (`/v2/actions/...`). The handler serves files only; mount the
 * ActionService (with createBearerAuthInterceptor) at `apiBaseUrl`.
 *
 * - `GET <basePath>` redirects (308) to `<basePath>/`, which is the page.
 * - `<basePath>/assets/<version>/<file>` are its files, cached for good when
 *   `<version>` is the current one (a hash of all files), else revalidated.
 * - Everything else below `<basePath>` is 404; methods other than GET and
 *   HEAD are 405. ETags, If-None-Match (304) and gzip are supported, and
 *   every response has the headers of consoleSecurityHeaders.
 *
 * The files are read once, here. Throws a ConnectError with
 * Code.InvalidArgument for a malformed `basePath` or `apiBaseUrl`, and with
 * Code.FailedPrecondition when the assets folder is missing.
 */
export function createConsoleHandler(options: ConsoleHandlerOptions = {}): ConsoleHandler {
  const basePath = normalizeBasePath(options.basePath ?? "/console");
  const api = parseApiBaseUrl(options.apiBaseUrl ?? "");
  const assets = loadConsoleAssets(options.assetsDir ?? consoleAssetsDir);
  const version = assetsVersion(assets);
  const assetsPrefix = `${basePath}/assets/`;
  const versionPrefix = `${assetsPrefix}${version}/`;
  const template = assets.get("index.html")!.body.toString("utf8");
  const page = asset(
    "index.html",
    Buffer.from(
      template.replaceAll("{{assets}}", escapeAttribute(versionPrefix.slice(0, -1))).replaceAll("{{apiBaseUrl}}", escapeAttribute(api.base)),
      "utf8",
    ),
  );
  const security = consoleSecurityHeaders(api.origin !== undefined && api.origin !== "null" ? api.origin : undefined);

  const pathOf = (url: string): string => {
    const end = url.search(/[?#]/);
    return end === -1 ? url : url.slice(0, end);
  };
  const handles = (url: string): boolean => {
    const path = pathOf(url);
    return basePath === "" || path === basePath || path.startsWith(`${basePath}/`);
  };

  const send = (
    req: ConsoleRequest,
    res: ConsoleResponse,
    status: number,
    headers: Record<string, string>,
    body: Buffer | string | undefined,
  ): void => {
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    const all: Record<string, string> = { ...security, ...headers };
    if (bytes !== undefined) all["content-length"] = String(bytes.length);
    res.writeHead(status, all);
    if (req.method === "HEAD" || bytes === undefined) res.end();
    else res.end(bytes);
  };
  const plain = (req: ConsoleRequest, res: ConsoleResponse, status: number, text: string, extra: Record<string, string> = {}) =>
    send(req, res, status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", ...extra }, `${text}\n`);

  const serveFile = (req: ConsoleRequest, res: ConsoleResponse, file: ConsoleAsset, cacheControl: string): void => {
    const acceptEncoding = String(req.headers["accept-encoding"] ?? "");
    const gzip = file.gzip !== undefined && /(^|[\s,])gzip(?!\s*;\s*q\s*=\s*0(\.0*)?(\s*(,|$)))/i.test(acceptEncoding);
    const etag = gzip ? `${file.etag.slice(0, -1)}-gz"` : file.etag;
    const headers: Record<string, string> = { "cache-control": cacheControl, etag, vary: "Accept-Encoding" };
    const ifNoneMatch = req.headers["if-none-match"];
    if (typeof ifNoneMatch === "string" && ifNoneMatch.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag || tag.trim() === "*")) {
      send(req, res, 304, headers, undefined);
      return;
    }
    headers["content-type"] = file.contentType;
    if (gzip) headers["content-encoding"] = "gzip";
    send(req, res, 200, headers, gzip ? file.gzip : file.body);
  };

  const handler = (req: ConsoleRequest, res: ConsoleResponse, next?: () => void): void => {
    const url = req.url ?? "/";
    if (!handles(url)) {
      if (next !== undefined) next();
      else plain(req, res, 404, "Not Found");
      return;
    }
    const path = pathOf(url);
    if (req.method !== "GET" && req.method !== "HEAD") {
      plain(req, res, 405, "Method Not Allowed", { allow: "GET, HEAD" });
      return;
    }
    if (path === basePath && basePath !== "") {
      const query = url.slice(path.length).split("#", 1)[0]!;
      send(req, res, 308, { location: `${basePath}/${query}`, "cache-control": "no-store" }, undefined);
      return;
    }
    if (path === `${basePath}/` || path === `${basePath}/index.html`) {
      serveFile(req, res, page, revalidate);
      return;
    }
    if (path.startsWith(assetsPrefix)) {
      const rest = path.slice(assetsPrefix.length);
      const slash = rest.indexOf("/");
      const requested = slash === -1 ? "" : rest.slice(0, slash);
      const name = slash === -1 ? "" : rest.slice(slash + 1);
      const file = assetNamePattern.test(requested) && assetNamePattern.test(name) && name !== "index.html" ? assets.get(name) : undefined;
      if (file !== undefined) {
        // Another version (a page loaded before a redeploy) still gets the files, but only the current one is cached for good.
        serveFile(req, res, file, requested === version ? immutable : revalidate);
        return;
      }
    }
    plain(req, res, 404, "Not Found");
  };
  return Object.assign(handler, { basePath, handles });
}
