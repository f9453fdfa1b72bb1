// Target calls are OpenTelemetry client spans: checked with a minimal recording
// tracer provider and propagator registered through @opentelemetry/api.
import {
  type Attributes,
  type Context,
  context as otelContext,
  propagation,
  type Span,
  type SpanContext,
  SpanKind,
  type SpanOptions,
  type SpanStatus,
  SpanStatusCode,
  type TextMapPropagator,
  trace,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../src/logger.js";
import { createTargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import type { Target } from "../src/target.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

interface Recorded {
  name: string;
  kind: SpanKind | undefined;
  attributes: Attributes;
  status: SpanStatus;
  ended: boolean;
  traceId: string;
}

const recorded: Recorded[] = [];

function recordingSpan(name: string, options: SpanOptions): Span {
  const r: Recorded = {
    name, kind: options.kind, attributes: { ...options.attributes }, status: { code: SpanStatusCode.UNSET }, ended: false,
    traceId: "0af7651916cd43dd8448eb211c80319c",
  };
  recorded.push(r);
  const spanContext: SpanContext = { traceId: r.traceId, spanId: "b7ad6b7169203331", traceFlags: 1 };
  const span: Span = {
    spanContext: () => spanContext,
    setAttribute: (k, v) => ((r.attributes[k] = v), span),
    setAttributes: (a) => (Object.assign(r.attributes, a), span),
    addEvent: () => span,
    addLink: () => span,
    addLinks: () => span,
    setStatus: (s) => ((r.status = s), span),
    updateName: (n) => ((r.name = n), span),
    end: () => void (r.ended = true),
    isRecording: () => true,
    recordException: () => undefined,
  };
  return span;
}

const tracer: Tracer = {
  startSpan: (name, options = {}) => recordingSpan(name, options),
  startActiveSpan(name: string, ...args: unknown[]) {
    const fn = args[args.length - 1] as (span: Span) => unknown;
    const options = (args.length > 1 ? args[0] : {}) as SpanOptions;
    const span = recordingSpan(name, options);
    return otelContext.with(trace.setSpan(otelContext.active(), span), () => fn(span));
  },
} as Tracer;
const provider: TracerProvider = { getTracer: () => tracer };

/** Writes a W3C traceparent header for the active span. */
const propagator: TextMapPropagator = {
  inject(context: Context, carrier: unknown, setter) {
    const sc = trace.getSpanContext(context);
    if (sc) setter.set(carrier, "traceparent", `00-${sc.traceId}-${sc.spanId}-01`);
  },
  extract: (context) => context,
  fields: () => ["traceparent"],
};

let targets: TargetServer;
beforeAll(async () => {
  trace.setGlobalTracerProvider(provider);
  propagation.setGlobalPropagator(propagator);
  targets = await startTargetServer();
});
afterAll(async () => {
  trace.disable();
  propagation.disable();
  await targets.close();
});

const date = new Date();
const target = (path: string): Target => ({
  id: "t-1", name: "hook", type: "webhook", interruptOnError: true, endpoint: targets.endpoint(path), timeoutMs: 2000,
  instanceId: "", signingKey: "k".repeat(36), payloadType: "json", creationDate: date, changeDate: date,
});

describe("tracing", () => {
  it("records a client span per target call, with its outcome, and propagates the trace context", async () => {
    targets.route("/fail", { status: 502 });
    const dispatcher = createTargetDispatcher({ logger: silentLogger });
    await dispatcher.call({ target: target("/ok"), executionId: "request", trigger: "/a.B/C", body: "{}", attempt: 2 });
    await dispatcher.call({ target: target("/fail"), executionId: "event", trigger: "user.human.added", body: "{}" }).catch(() => undefined);
    await dispatcher.close();
    expect(recorded).toHaveLength(2);
    expect(recorded[0]).toMatchObject({
      name: "target hook",
      kind: SpanKind.CLIENT,
      ended: true,
      status: { code: SpanStatusCode.UNSET },
      attributes: {
        "actions.target.id": "t-1",
        "actions.target.name": "hook",
        "actions.execution.id": "request",
        "actions.trigger": "/a.B/C",
        "actions.attempt": 2,
        "actions.async": false,
        "http.request.method": "POST",
        "url.full": targets.endpoint("/ok"),
        "http.response.status_code": 200,
      },
    });
    expect(recorded[1]!.status.code).toBe(SpanStatusCode.ERROR);
    expect(recorded[1]!.status.message).toMatch(/status 502/);
    expect(recorded[1]!.attributes["http.response.status_code"]).toBe(502);
    expect(targets.callsTo("/ok")[0]!.headers.traceparent).toBe("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  });
});
