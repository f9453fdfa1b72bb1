import { Code, ConnectError } from "@connectrpc/connect";
import { context, propagation, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { Agent, type Dispatcher } from "undici";
import { createEndpointGuard, type EndpointGuard } from "./endpoint-guard.js";
import type { Excerpter } from "./excerpt.js";
import { createFairQueue } from "./fair-queue.js";
import { ExchangeError, exchange } from "./http-exchange.js";
import type { SigningKeySource } from "../keys/signing-key-source.js";
import { createPayloadEncoder, PayloadEncodingError } from "./payload-token.js";
import { type Logger, createJsonLogger } from "../logger.js";
import { signPayload } from "./signature.js";
import type { Target } from "../target.js";

/**
 * TargetCall is one HTTP call of a target.
 */
export interface TargetCall {
  readonly target: Target;
  /** The execution that chose the target, for logs and records. */
  readonly executionId: string;
  /**
   * The JSON payload. It is the body of a "json" target; a "jwt" or "jwe"
   * target gets it signed (and encrypted), see PayloadType.
   */
  readonly body: string;
  /** Aborts the call, for example when the RPC is cancelled. */
  readonly signal?: AbortSignal;
  /** What triggered the call: a full method, an event type or a function name. Default "". */
  readonly trigger?: string;
  /** Delivery attempt, 1 for the first. Default 1. */
  readonly attempt?: number;
  /** A deadline shorter than the target's timeout, in milliseconds. Default the target's timeout. */
  readonly timeoutMs?: number;
  /** Only the status counts: the body is read (up to the limit) but not parsed. Default false. */
  readonly ignoreBody?: boolean;
  /**
   * The value of the call's hopHeader (Actions-Hop): how many target calls
   * led to it, itself included. Default 1.
   */
  readonly hop?: number;
  /** Marks the call as a test (TestTarget): its record has `test: true`. Default false. */
  readonly test?: boolean;
  /**
   * Makes the excerpts of this call's record, instead of the dispatcher's
   * `excerpts` option (TestTarget always keeps excerpts). Default that option.
   */
  readonly excerpts?: Excerpter;
  /** Called with this call's record, before the dispatcher's onCall. Must not throw. Default none. */
  readonly onRecord?: (record: TargetCallRecord) => void;
}

/**
 * TargetResponse is the answer of a target that succeeded: a 2xx status and
 * its body, parsed as JSON (undefined when the body was empty).
 */
export interface TargetResponse {
  readonly status: number;
  readonly json: unknown;
}

/**
 * TargetCallRecord describes a finished target call, successful or not.
 */
export interface TargetCallRecord {
  /** The instance of the target, "" for the default instance. */
  readonly instanceId: string;
  readonly targetId: string;
  readonly targetName: string;
  readonly executionId: string;
  /** What triggered the call: a full method, an event type or a function name. */
  readonly trigger: string;
  readonly endpoint: string;
  /** HTTP status, 0 when there was none (timeout, connection error). */
  readonly status: number;
  readonly durationMs: number;
  /** What went wrong, undefined on success. */
  readonly error: string | undefined;
  readonly attempt: number;
  readonly async: boolean;
  readonly startTime: Date;
  /**
   * The start of the payload sent, JSON before signing or encryption,
   * redacted and size-bounded (see Excerpter.payload); only when the
   * dispatcher (or the call) has an excerpter.
   */
  readonly requestExcerpt?: string;
  /**
   * The start of the answer's body, redacted and size-bounded (see
   * Excerpter.answer); only when the dispatcher (or the call) has an
   * excerpter and the target answered.
   */
  readonly responseExcerpt?: string;
  /** True for calls made by TestTarget; left out for real calls. */
  readonly test?: boolean;
}

/**
 * TargetDispatcher makes the HTTP calls of targets.
 */
export interface TargetDispatcher {
  /**
   * call POSTs the body, signed, and resolves the 2xx answer. It rejects with a
   * ConnectError: Code.FailedPrecondition "Execution failed" for a status
   * outside 2xx, a timeout, a connection error or a body that is too large or
   * not JSON where JSON is needed (the detail is in the error's cause); a
   * forwarded error when a 2xx body forwards one (see forwardedErrorOf).
   */
  call(call: TargetCall): Promise<TargetResponse>;
  /**
   * fire starts a call and returns at once: async targets. At most
   * maxAsyncConcurrency run at a time, at most maxAsyncPerInstance of them
   * for the targets of one instance and maxAsyncPerTarget for one target;
   * free slots go round the instances with calls waiting, and within an
   * instance round its targets. Up to maxAsyncQueue more wait (at most
   * maxAsyncQueuePerInstance of one instance); beyond that the call is
   * dropped and recorded as failed.
   */
  fire(call: TargetCall): void;
  /** idle resolves when no fired call runs or waits. */
  idle(): Promise<void>;
  /**
   * close waits for fired calls, then closes all connections. When
   * `options.signal` aborts first (the end of a shutdown's grace period),
   * the fired calls still running or waiting are cancelled.
   */
  close(options?: { readonly signal?: AbortSignal }): Promise<void>;
}

/**
 * TargetDispatcherOptions configures createTargetDispatcher.
 */
export interface TargetDispatcherOptions {
  /** Largest response body read, default 1 MiB; a larger body fails the call. */
  readonly maxResponseBytes?: number;
  /** Fired (async) calls running at once, default 64. */
  readonly maxAsyncConcurrency?: number;
  /**
   * Fired calls of the targets of one instance (tenant) running at once,
   * default three quarters of maxAsyncConcurrency (48): an instance whose
   * targets hang leaves the other instances at least the rest. Free slots go
   * round the instances with calls waiting.
   */
  readonly maxAsyncPerInstance?: number;
  /**
   * Fired calls of one target running at once, default three quarters of
   * maxAsyncPerInstance (36): a target that hangs leaves the other targets
   * of its instance at least the rest of the instance's share. Within an
   * instance, free slots go round its targets with calls waiting.
   */
  readonly maxAsyncPerTarget?: number;
  /** Fired calls waiting for a slot, default 10 000. */
  readonly maxAsyncQueue?: number;
  /**
   * Fired calls of one instance waiting for a slot, default three quarters
   * of maxAsyncQueue (7500): an instance that fires faster than its targets
   * answer cannot fill the whole waiting room.
   */
  readonly maxAsyncQueuePerInstance?: number;
  /** Keep-alive connections per target origin, default 128. */
  readonly connectionsPerOrigin?: number;
  /** How long an idle keep-alive connection stays open, default 30 000 ms. */
  readonly keepAliveTimeoutMs?: number;
  /** The undici dispatcher to send with, default a keep-alive Agent made from the options above. */
  readonly dispatcher?: Dispatcher;
  /** Called after every call, default nothing. Must not throw. */
  readonly onCall?: (record: TargetCallRecord) => void;
  /** Logger, default JSON lines on stderr at level "info". */
  readonly logger?: Logger;
  /** User-Agent header, default "connect-actions". */
  readonly userAgent?: string;
  /**
   * Keeps calls away from denied addresses (SSRF), default
   * createEndpointGuard(): loopback, link-local and metadata addresses are
   * denied when NODE_ENV is "production". Applies to the dispatcher's own
   * Agent; with a custom `dispatcher`, only IP-literal endpoints are checked.
   */
  readonly endpointGuard?: EndpointGuard;
  /**
   * The instances' signing keys, which sign the payloads of "jwt" and "jwe"
   * targets; default none: calls of such targets fail (permanently).
   */
  readonly signingKeys?: SigningKeySource;
  /**
   * Keeps excerpts of the payload and the answer in the records of calls
   * (requestExcerpt, responseExcerpt), see createExcerpter. Default none: no
   * excerpt is made, and calls do no work for them.
   */
  readonly excerpts?: Excerpter;
}

/**
 * TargetFailure is the cause of an "Execution failed" error: what went wrong,
 * and the HTTP status the target answered (0 when it did not answer).
 */
export class TargetFailure extends Error {
  override name = "TargetFailure";
  constructor(
    message: string,
    readonly status: number = 0,
    /** True when trying again cannot help (the endpoint is denied, for example). */
    readonly permanent: boolean = false,
  ) {
    super(message);
  }
}

/**
 * executionFailed returns the error a client gets for a failed target:
 * Code.FailedPrecondition "Execution failed", with a TargetFailure carrying
 * `detail` and `status` as the cause (for logs only; it is not sent to the client).
 */
export function executionFailed(detail: string, status = 0, permanent = false): ConnectError {
  return new ConnectError("Execution failed", Code.FailedPrecondition, undefined, undefined, new TargetFailure(detail, status, permanent));
}

/**
 * targetStatusOf returns the HTTP status behind a target call error, or 0 when
 * the target did not answer (timeout, connection error) or the error is not a
 * target call error.
 */
export function targetStatusOf(error: unknown): number {
  return error instanceof ConnectError && error.cause instanceof TargetFailure ? error.cause.status : 0;
}

/**
 * errorDetail returns the most precise description of a target call error:
 * the cause of an "Execution failed" error, else the error's message (for a
 * ConnectError without the "[code] " prefix, so that records read alike).
 */
export function errorDetail(error: unknown): string {
  if (error instanceof ConnectError) {
    return error.cause instanceof Error ? error.cause.message : error.rawMessage;
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * notJsonAnswerDetail is what a call of a "call" target reports when the
 * target answered 2xx with a body that is not JSON.
 */
export function notJsonAnswerDetail(target: Target): string {
  return `target "${target.name}" answered a body that is not JSON`;
}

const forwardedCodes: Record<number, Code> = {
  400: Code.InvalidArgument,
  401: Code.Unauthenticated,
  403: Code.PermissionDenied,
  404: Code.NotFound,
  409: Code.AlreadyExists,
  429: Code.ResourceExhausted,
};

/**
 * codeFromHttpStatus maps a forwarded HTTP status from 400 to 499 to a Code
 * as ZITADEL does: 400 InvalidArgument, 401 Unauthenticated, 403
 * PermissionDenied, 404 NotFound, 409 AlreadyExists, 429 ResourceExhausted,
 * every other status Code.Unknown.
 */
export function codeFromHttpStatus(status: number): Code {
  return forwardedCodes[status] ?? Code.Unknown;
}

/**
 * ForwardedError is the error a target forwards in a 2xx answer:
 * `{"forwardedStatusCode": 403, "forwardedErrorMessage": "..."}`.
 */
export interface ForwardedError {
  readonly statusCode: number;
  readonly message: string;
}

/**
 * forwardedErrorOf reads a forwarded error from a target's 2xx JSON answer
 * the way ZITADEL does (Go's encoding/json into `{ForwardedStatusCode int;
 * ForwardedErrorMessage string}`): keys match case-insensitively (an exact
 * match wins, the last duplicate wins), null leaves a field unset, and an
 * answer that does not decode (not an object, a code that is not an integer,
 * a message that is not a string) forwards nothing. There is a forwarded
 * error when the code is not 0 or the message is not empty; otherwise
 * undefined.
 */
export function forwardedErrorOf(json: unknown): ForwardedError | undefined {
  if (json === null || typeof json !== "object" || Array.isArray(json)) return undefined;
  const code = goField(json as Record<string, unknown>, "forwardedStatusCode");
  const message = goField(json as Record<string, unknown>, "forwardedErrorMessage");
  if (code !== undefined && code !== null && !(typeof code === "number" && Number.isInteger(code) && Math.abs(code) <= 2 ** 63)) return undefined;
  if (message !== undefined && message !== null && typeof message !== "string") return undefined;
  const statusCode = typeof code === "number" ? code : 0;
  const text = typeof message === "string" ? message : "";
  return statusCode !== 0 || text !== "" ? { statusCode, message: text } : undefined;
}

/** goField returns the value of `name` as Go's encoding/json finds it: the exact key, else the last case-insensitive match. */
function goField(object: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(object, name)) return object[name];
  const lower = name.toLowerCase();
  let found: unknown;
  for (const key of Object.keys(object)) {
    if (key.toLowerCase() === lower) found = object[key];
  }
  return found;
}

/**
 * createTargetDispatcher returns a TargetDispatcher sending over undici with
 * keep-alive connections.
 */
export function createTargetDispatcher(options: TargetDispatcherOptions = {}): TargetDispatcher {
  const maxBytes = options.maxResponseBytes ?? 1024 * 1024;
  const maxConcurrency = options.maxAsyncConcurrency ?? 64;
  const maxQueue = options.maxAsyncQueue ?? 10_000;
  const threeQuarters = (n: number) => Math.max(1, Math.floor((n * 3) / 4));
  const maxPerInstance = Math.min(options.maxAsyncPerInstance ?? threeQuarters(maxConcurrency), maxConcurrency);
  const maxPerTarget = Math.min(options.maxAsyncPerTarget ?? threeQuarters(maxPerInstance), maxPerInstance);
  const maxQueuePerInstance = Math.min(options.maxAsyncQueuePerInstance ?? threeQuarters(maxQueue), maxQueue);
  const logger = options.logger ?? createJsonLogger();
  const userAgent = options.userAgent ?? "connect-actions";
  const guard = options.endpointGuard ?? createEndpointGuard();
  const ownAgent =
    options.dispatcher === undefined
      ? new Agent({
          connections: options.connectionsPerOrigin ?? 128,
          keepAliveTimeout: options.keepAliveTimeoutMs ?? 30_000,
          keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs ?? 30_000, 600_000),
          ...(guard.enabled ? { connect: { lookup: guard.lookup } } : {}),
        })
      : undefined;
  const agent: Dispatcher = options.dispatcher ?? ownAgent!;
  const origins = new Map<string, { origin: string; path: string; denied: string | undefined }>();
  const tracer = trace.getTracer("connect-actions");
  const spanOptions = { kind: SpanKind.CLIENT };
  const payloads = createPayloadEncoder(options.signingKeys);
  /** encode returns the body of a "jwt" or "jwe" target, or throws an "Execution failed" error saying why not. */
  const encode = async (target: Target, json: string): Promise<string> => {
    try {
      return await payloads.encode(target, json);
    } catch (e) {
      if (e instanceof PayloadEncodingError) throw executionFailed(e.message, 0, e.permanent);
      throw executionFailed(`the ${target.payloadType} payload of target "${target.name}" could not be made: ${errorDetail(e)}`);
    }
  };

  const record = (
    call: TargetCall,
    startTime: Date,
    start: number,
    status: number,
    error: string | undefined,
    async: boolean,
    answer?: Uint8Array,
  ) => {
    const r: { -readonly [K in keyof TargetCallRecord]: TargetCallRecord[K] } = {
      instanceId: call.target.instanceId,
      targetId: call.target.id,
      targetName: call.target.name,
      executionId: call.executionId,
      trigger: call.trigger ?? "",
      endpoint: call.target.endpoint,
      status,
      durationMs: performance.now() - start,
      error,
      attempt: call.attempt ?? 1,
      async,
      startTime,
    };
    const excerpts = call.excerpts ?? options.excerpts;
    if (excerpts !== undefined) {
      try {
        r.requestExcerpt = excerpts.payload(call.body);
        if (answer !== undefined) r.responseExcerpt = excerpts.answer(answer);
      } catch (e) {
        logger.error("excerpts of a target call failed", { error: e });
      }
    }
    if (call.test === true) r.test = true;
    try {
      call.onRecord?.(r);
    } catch (e) {
      logger.error("onRecord listener failed", { error: e });
    }
    try {
      options.onCall?.(r);
    } catch (e) {
      logger.error("onCall listener failed", { error: e });
    }
  };

  /**
   * send makes one call: span, endpoint check, payload, signature, exchange,
   * answer, record. One async function: no promise layers of its own but this
   * one (the exchange's and its own).
   */
  const send = async (call: TargetCall, async: boolean): Promise<TargetResponse> => {
    const { target } = call;
    // A plain (not active) span: nothing runs inside it, and its context is injected explicitly.
    const span = tracer.startSpan(`target ${target.name}`, spanOptions);
    // Attributes are built only for spans that are recorded (never without an SDK).
    const recording = span.isRecording();
    if (recording) {
      span.setAttributes({
        "actions.target.id": target.id,
        "actions.target.name": target.name,
        "actions.execution.id": call.executionId,
        "actions.trigger": call.trigger ?? "",
        "actions.attempt": call.attempt ?? 1,
        "actions.async": async,
        "http.request.method": "POST",
        "url.full": target.endpoint,
      });
    }
    const startTime = new Date();
    const start = performance.now();
    let status = 0;
    let answerBody: Uint8Array | undefined;
    try {
      if (call.signal?.aborted) {
        throw new ConnectError("the RPC was cancelled before the target was called", Code.Canceled);
      }
      let where = origins.get(target.endpoint);
      if (where === undefined) {
        const url = new URL(target.endpoint);
        where = { origin: url.origin, path: url.pathname + url.search, denied: guard.denied(url.hostname) };
        if (origins.size > 10_000) origins.clear();
        origins.set(target.endpoint, where);
      }
      if (where.denied !== undefined) {
        throw executionFailed(`target "${target.name}" is not allowed: ${where.denied}`, 0, true);
      }
      let body = call.body;
      // As in ZITADEL: the token is the body, still with Content-Type application/json and the signature over it.
      if (target.payloadType === "jwt" || target.payloadType === "jwe") body = await encode(target, body);
      // signatureHeader and hopHeader, written out (lower case, as HTTP/2 wants them): a literal
      // without computed keys is built from a template.
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": userAgent,
        "zitadel-signature": signPayload(body, target.signingKey),
        "actions-hop": call.hop === undefined ? "1" : String(call.hop),
      };
      // The span explicitly: without a context manager, the active context does not hold it.
      if (trace.isSpanContextValid(span.spanContext())) {
        propagation.inject(trace.setSpan(context.active(), span), headers);
      }
      const answer = await exchange(agent, {
        origin: where.origin,
        path: where.path,
        headers,
        body,
        timeoutMs: call.timeoutMs === undefined ? target.timeoutMs : Math.min(target.timeoutMs, call.timeoutMs),
        maxBytes,
        signal: call.signal,
      });
      status = answer.status;
      answerBody = answer.body;
      if (status < 200 || status > 299) {
        throw executionFailed(`target "${target.name}" answered status ${status}`, status);
      }
      let json: unknown;
      if (call.ignoreBody !== true && answer.body.length > 0) {
        const text = answer.body.toString("utf8");
        if (text.trim() !== "") {
          try {
            json = JSON.parse(text);
          } catch {
            if (target.type === "call") throw executionFailed(notJsonAnswerDetail(target), status);
          }
        }
        const forwarded = forwardedErrorOf(json);
        if (forwarded !== undefined) {
          throw forwardedError(target, status, forwarded);
        }
      }
      record(call, startTime, start, status, undefined, async, answerBody);
      if (recording) span.setAttribute("http.response.status_code", status);
      span.end();
      return { status, json };
    } catch (e) {
      const error = e instanceof ExchangeError ? exchangeFailure(target, e) : e;
      const errorStatus = targetStatusOf(error);
      record(call, startTime, start, errorStatus || status, errorDetail(error), async, answerBody);
      if (recording && errorStatus !== 0) span.setAttribute("http.response.status_code", errorStatus);
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorDetail(error) });
      span.end();
      throw error;
    }
  };

  // Fired calls: a bounded number run, taking turns between targets; a bounded number wait.
  /** Cancels the fired calls when a close's grace period ends. */
  const firedCancel = new AbortController();
  let idleWaiters: (() => void)[] = [];
  let pumpScheduled = false;
  const isIdle = () => fired.running === 0 && fired.waiting === 0 && !pumpScheduled;
  const notifyIdle = () => {
    if (idleWaiters.length > 0 && isIdle()) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const w of waiters) w();
    }
  };
  const fired = createFairQueue<TargetCall>({
    maxRunning: maxConcurrency,
    maxRunningPerGroup: maxPerInstance,
    maxRunningPerLane: maxPerTarget,
    maxWaiting: maxQueue,
    maxWaitingPerGroup: maxQueuePerInstance,
    groupOf: (call) => call.target.instanceId,
    laneOf: (call) => call.target.id,
    run: (call) =>
      send({ ...call, signal: call.signal === undefined ? firedCancel.signal : AbortSignal.any([call.signal, firedCancel.signal]) }, true).then(
        () => undefined,
        (e: unknown) => {
          logger.warn("async target failed", {
            target: call.target.name,
            targetId: call.target.id,
            execution: call.executionId,
            error: errorDetail(e),
          });
        },
      ),
    onSettled: notifyIdle,
  });

  return {
    call: (call) => send(call, false),
    fire(call) {
      const offered = fired.offer(call);
      if (offered !== "queued") {
        const detail =
          offered === "full"
            ? `async queue is full (${maxQueue} calls waiting); call dropped`
            : `async queue of ${call.target.instanceId === "" ? "the default instance" : `instance "${call.target.instanceId}"`} is full (${maxQueuePerInstance} calls waiting); call dropped`;
        logger.warn("async target dropped", { target: call.target.name, targetId: call.target.id, error: detail });
        record(call, new Date(), performance.now(), 0, detail, true);
        return;
      }
      // Start fired calls after the current I/O callbacks: the RPC's reply is
      // written before any of them takes the event loop.
      if (!pumpScheduled) {
        pumpScheduled = true;
        setImmediate(() => {
          pumpScheduled = false;
          fired.pump();
          notifyIdle();
        });
      }
    },
    idle() {
      if (isIdle()) return Promise.resolve();
      return new Promise<void>((resolve) => idleWaiters.push(resolve));
    },
    async close(closeOptions = {}) {
      const { signal } = closeOptions;
      const onAbort = () => firedCancel.abort();
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await this.idle();
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
      await ownAgent?.close();
    },
  };
}

/**
 * forwardedError is the error of a forwarded status, as ZITADEL makes it: a
 * status from 400 to 499 keeps its code (codeFromHttpStatus) and message;
 * any other is Code.FailedPrecondition with the forwarded message ("Execution
 * failed" when there is none).
 */
function forwardedError(target: Target, status: number, forwarded: ForwardedError): ConnectError {
  const { statusCode, message } = forwarded;
  const cause = new TargetFailure(`target "${target.name}" forwarded status ${statusCode}: ${message}`, status);
  if (statusCode >= 400 && statusCode <= 499) {
    return new ConnectError(message || `forwarded status ${statusCode}`, codeFromHttpStatus(statusCode), undefined, undefined, cause);
  }
  return new ConnectError(message || "Execution failed", Code.FailedPrecondition, undefined, undefined, cause);
}

/**
 * exchangeFailure turns a failed exchange into the error of the target call:
 * Code.Canceled when the RPC was cancelled, a permanent "Execution failed"
 * for a denied address, else "Execution failed" with what happened.
 */
function exchangeFailure(target: Target, e: ExchangeError): ConnectError {
  switch (e.reason) {
    case "canceled":
      return new ConnectError(`target "${target.name}" was cancelled with the RPC`, Code.Canceled);
    case "timeout":
    case "too-large":
      return executionFailed(`target "${target.name}" ${e.message}`, e.status);
    case "network":
      if ((e.cause as { code?: unknown } | undefined)?.code === "EDENIEDADDRESS") {
        return executionFailed(`target "${target.name}" is not allowed: ${(e.cause as Error).message}`, 0, true);
      }
      return executionFailed(`target "${target.name}" could not be reached: ${e.message}`, e.status);
  }
}
