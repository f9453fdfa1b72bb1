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

// One timer checks every exchange in flight, instead of a timer and an abort
// listener per exchange: arming and clearing those costs more, on the request
// path, than the rest of the exchange's own work. The timer runs only while
// exchanges are in flight.
const inFlight = new Set<Exchange>();
let checkTimer: ReturnType<typeof setTimeout> | undefined;

function check(): void {
  checkTimer = undefined;
  const now = performance.now();
  for (const exchange of inFlight) {
    if (exchange.signal?.aborted === true) exchange.expire("canceled");
    else if (now >= exchange.deadline) exchange.expire("timeout");
  }
  if (inFlight.size > 0) checkTimer = setTimeout(check, exchangeCheckIntervalMs);
}

/** The body of an answer without one: shared, never written to. */
const noBody = Buffer.alloc(0);

/**
 * One exchange in flight: undici's dispatch handler, and what the shared
 * check sees. A class, so that an exchange allocates one object and no
 * closures.
 */
class Exchange implements Dispatcher.DispatchHandler {
  readonly deadline: number;
  readonly signal: AbortSignal | undefined;
  private controller: Dispatcher.DispatchController | undefined;
  private failure: ExchangeError | undefined;
  private settled = false;
  private status = 0;
  private size = 0;
  private chunks: Buffer[] | undefined;

  constructor(
    private readonly request: ExchangeRequest,
    private readonly resolve: (response: ExchangeResponse) => void,
    private readonly reject: (error: Error) => void,
  ) {
    this.deadline = performance.now() + request.timeoutMs;
    this.signal = request.signal;
  }

  settle(error: Error | undefined): void {
    if (this.settled) return;
    this.settled = true;
    inFlight.delete(this);
    if (error !== undefined) {
      this.reject(error);
      return;
    }
    const chunks = this.chunks;
    this.resolve({
      status: this.status,
      body: chunks === undefined ? noBody : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.size),
    });
  }

  fail(error: ExchangeError): void {
    if (this.settled) return;
    this.failure = error;
    if (this.controller !== undefined && !this.controller.aborted) this.controller.abort(error);
    this.settle(error);
  }

  expire(reason: "timeout" | "canceled"): void {
    this.fail(reason === "timeout"
      ? new ExchangeError("timeout", `timed out after ${this.request.timeoutMs} ms`, this.status)
      : new ExchangeError("canceled", "was cancelled", this.status));
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.failure !== undefined) controller.abort(this.failure);
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    this.status = statusCode;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.size += chunk.length;
    if (this.size > this.request.maxBytes) {
      this.fail(new ExchangeError("too-large", `answered more than ${this.request.maxBytes} bytes`, this.status));
      return;
    }
    (this.chunks ??= []).push(chunk);
  }

  onResponseEnd(): void {
    this.settle(undefined);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.settle(this.failure ?? new ExchangeError("network", describe(error), this.status, { cause: error }));
  }
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
    const handler = new Exchange(request, resolve, reject);
    if (request.signal?.aborted === true) {
      handler.expire("canceled");
      return;
    }
    inFlight.add(handler);
    checkTimer ??= setTimeout(check, exchangeCheckIntervalMs);
    try {
      dispatcher.dispatch(
        { origin: request.origin, path: request.path, method: "POST", headers: request.headers, body: request.body },
        handler,
      );
    } catch (error) {
      handler.settle(new ExchangeError("network", describe(error), 0, { cause: error }));
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
