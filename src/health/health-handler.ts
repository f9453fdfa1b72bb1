import type { NodeServerRequest, NodeServerResponse } from "../management/node-router-handler.js";
import type { Health } from "./health.js";

/**
 * HealthHandlerOptions configures createHealthHandler.
 */
export interface HealthHandlerOptions {
  /** Paths answered with liveness, default ["/livez", "/healthz"]. */
  readonly livePaths?: readonly string[];
  /** Paths answered with readiness, default ["/readyz"]. */
  readonly readyPaths?: readonly string[];
}

/**
 * HealthHandler is a Node.js request handler for liveness and readiness
 * probes, with the test for the paths it answers.
 */
export interface HealthHandler {
  (req: NodeServerRequest, res: NodeServerResponse): void;
  /** handles tells whether the handler answers this request URL (query ignored). */
  handles(url: string): boolean;
}

/**
 * createHealthHandler returns a handler for Kubernetes-style probes: GET or
 * HEAD on a live path answers 200 `{"status":"ok"}` while health.live(), on a
 * ready path 200 `{"status":"ok"}` while health.ready(), else 503
 * `{"status":"unavailable","draining":...,"checks":{"postgres":"failed"}}`
 * (which checks failed, not their errors: those are logged). Other methods
 * get 405. Answers are never cached.
 */
export function createHealthHandler(health: Health, options: HealthHandlerOptions = {}): HealthHandler {
  const live = new Set(options.livePaths ?? ["/livez", "/healthz"]);
  const ready = new Set(options.readyPaths ?? ["/readyz"]);
  const pathOf = (url: string) => url.split("?", 1)[0] ?? "";
  const handler = (req: NodeServerRequest, res: NodeServerResponse) => {
    const path = pathOf(req.url ?? "");
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "application/json", "cache-control": "no-store" });
      res.end(JSON.stringify({ status: "method not allowed" }));
      return;
    }
    const status = health.status();
    const ok = live.has(path) ? status.live : status.ready;
    const body = ok
      ? { status: "ok" }
      : {
          status: "unavailable",
          live: status.live,
          draining: status.draining,
          checks: Object.fromEntries(Object.entries(status.checks).map(([name, c]) => [name, c.ok ? "ok" : "failed"])),
        };
    const text = JSON.stringify(body);
    res.writeHead(ok ? 200 : 503, {
      "content-type": "application/json",
      "cache-control": "no-store",
      "content-length": String(Buffer.byteLength(text)),
    });
    if (req.method === "HEAD") res.end();
    else res.end(text);
  };
  return Object.assign(handler, {
    handles: (url: string) => {
      const path = pathOf(url);
      return live.has(path) || ready.has(path);
    },
  });
}
