import http from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A request a loopback target received.
 */
export interface ReceivedCall {
  readonly path: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The raw body, exactly as received. */
  readonly body: string;
  /** The body parsed as JSON. */
  readonly json: any;
  readonly receivedAt: number;
}

/**
 * What a route answers: a status, an optional body (objects are sent as JSON)
 * and an optional delay before answering.
 */
export interface Answer {
  readonly status?: number;
  readonly body?: unknown;
  readonly delayMs?: number;
}

export type Route = Answer | ((call: ReceivedCall) => Answer | Promise<Answer>);

/**
 * A real HTTP server on 127.0.0.1 that plays targets: each path has a route,
 * every call is recorded.
 */
export interface TargetServer {
  readonly url: string;
  readonly calls: ReceivedCall[];
  /** URL of a path. */
  endpoint(path: string): string;
  /** Sets what a path answers (default 200 with an empty body). */
  route(path: string, route: Route): void;
  /** Calls to one path. */
  callsTo(path: string): ReceivedCall[];
  /** Resolves once `count` calls reached `path`. */
  waitFor(path: string, count?: number, timeoutMs?: number): Promise<ReceivedCall[]>;
  close(): Promise<void>;
}

export async function startTargetServer(): Promise<TargetServer> {
  const routes = new Map<string, Route>();
  const calls: ReceivedCall[] = [];
  const waiters = new Set<() => void>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let json: unknown;
      try {
        json = body === "" ? undefined : JSON.parse(body);
      } catch {
        json = undefined;
      }
      const path = (req.url ?? "/").split("?")[0]!;
      const call: ReceivedCall = { path, headers: req.headers, body, json, receivedAt: Date.now() };
      calls.push(call);
      for (const w of waiters) w();
      const route = routes.get(path) ?? {};
      const answer = typeof route === "function" ? await route(call) : route;
      const send = () => {
        if (res.destroyed) return;
        const payload = answer.body === undefined ? "" : typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
        res.writeHead(answer.status ?? 200, { "content-type": "application/json" });
        res.end(payload);
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const callsTo = (path: string) => calls.filter((c) => c.path === path);
  return {
    url,
    calls,
    endpoint: (path) => url + path,
    route: (path, route) => void routes.set(path, route),
    callsTo,
    waitFor(path, count = 1, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (callsTo(path).length >= count) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(callsTo(path));
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`expected ${count} calls to ${path}, got ${callsTo(path).length}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
