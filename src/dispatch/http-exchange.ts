import type { Dispatcher } from "undici";

/**
 * ExchangeRequest is one HTTP POST of an HttpExchange.
 */
export interface ExchangeRequest {
  /** "http://host:port". */
  readonly origin: string;
  /** Path and query. */
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** The whole exchange, from queueing to the last byte, may take this long. */
  readonly timeoutMs: number;
  /** The largest response body read; more fails the exchange with reason "too-large". */
  readonly maxBytes: number;
  /** Aborts the exchange with reason "canceled". */
  readonly signal?: AbortSignal;
}

/**
 * ExchangeResponse is a complete answer: its status and its body.
 */
export interface ExchangeResponse {
  readonly status: number;
  readonly body: Buffer;
}

/**
 * ExchangeError is why an exchange gave no complete answer: "timeout",
 * "canceled", "too-large" (with the status that had arrived), or "network"
 * (the connection failed or the answer was not HTTP; `cause` has the details).
 */
export class ExchangeError extends Error {
  override name = "ExchangeError";
  constructor(
    readonly reason: "timeout" | "canceled" | "too-large" | "network",
    message: string,
    readonly status = 0,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * exchangeCheckIntervalMs is how often the deadlines and signals of exchanges
 * in flight are checked: 10 ms. An exchange ends at most this much (plus any
 * event loop delay) after its deadline passes or its signal aborts.
 */
export const exchangeCheckIntervalMs = 10;

/** An exchange in flight, as the shared check sees it. */
interface Watched {
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  expire(reason: "timeout" | "canceled"): void;
}

// One timer checks every exchange in flight, instead of a timer and an abort
// listener per exchange: arming and clearing those costs more, on the request
// path, than the rest of the exchange's own work. The timer runs only while
// exchanges are in flight.
const inFlight = new Set<Watched>();
let checkTimer: ReturnType<typeof setTimeout> | undefined;

function check(): void {
  checkTimer = undefined;
  const now = performance.now();
  for (const watched of inFlight) {
    if (watched.signal?.aborted === true) watched.expire("canceled");
    else if (now >= watched.deadline) watched.expire("timeout");
  }
  if (inFlight.size > 0) checkTimer = setTimeout(check, exchangeCheckIntervalMs);
}

/**
 * exchange POSTs a request with undici's dispatch API and collects the
 * answer. The deadline covers the whole exchange: when it passes, or the
 * signal aborts, the promise rejects (within exchangeCheckIntervalMs), and
 * the request is aborted as soon as undici lets it (at once if it is under
 * way, else when it would start), so no request outlives its deadline on a
 * connection. No timer, listener, AbortController or stream is created per
 * request.
 */
export function exchange(dispatcher: Dispatcher, request: ExchangeRequest): Promise<ExchangeResponse> {
  return new Promise<ExchangeResponse>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let failure: ExchangeError | undefined;
    let settled = false;
    let status = 0;
    let size = 0;
    const chunks: Buffer[] = [];
    const { signal } = request;

    const settle = (error: Error | undefined) => {
      if (settled) return;
      settled = true;
      inFlight.delete(watched);
      if (error === undefined) resolve({ status, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) });
      else reject(error);
    };
    const fail = (error: ExchangeError) => {
      if (settled) return;
      failure = error;
      if (controller !== undefined && !controller.aborted) controller.abort(error);
      settle(error);
    };
    const watched: Watched = {
      deadline: performance.now() + request.timeoutMs,
      signal,
      expire(reason) {
        fail(reason === "timeout"
          ? new ExchangeError("timeout", `timed out after ${request.timeoutMs} ms`, status)
          : new ExchangeError("canceled", "was cancelled", status));
      },
    };
    if (signal?.aborted === true) {
      watched.expire("canceled");
      return;
    }
    inFlight.add(watched);
    checkTimer ??= setTimeout(check, exchangeCheckIntervalMs);

    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (failure !== undefined) c.abort(failure);
      },
      onResponseStart(_c, statusCode) {
        status = statusCode;
      },
      onResponseData(c, chunk) {
        size += chunk.length;
        if (size > request.maxBytes) {
          fail(new ExchangeError("too-large", `answered more than ${request.maxBytes} bytes`, status));
          return;
        }
        chunks.push(chunk);
        void c;
      },
      onResponseEnd() {
        settle(undefined);
      },
      onResponseError(_c, error) {
        settle(failure ?? new ExchangeError("network", describe(error), status, { cause: error }));
      },
    };
    try {
      dispatcher.dispatch(
        { origin: request.origin, path: request.path, method: "POST", headers: request.headers, body: request.body },
        handler,
      );
    } catch (error) {
      settle(new ExchangeError("network", describe(error), 0, { cause: error }));
    }
  });
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const cause = e.cause instanceof Error ? ` (${e.cause.message})` : "";
    return typeof code === "string" ? `${code} ${e.message}${cause}` : e.message + cause;
  }
  return String(e);
}
