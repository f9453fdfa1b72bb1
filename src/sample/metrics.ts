import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EventQueue } from "../event-queue.js";
import type { NodeServerRequest, NodeServerResponse } from "../node-router-handler.js";
import type { TargetCallRecord } from "../target-dispatcher.js";

/**
 * SampleMetricsOptions configures createSampleMetrics.
 */
export interface SampleMetricsOptions {
  /** The event queue whose pending deliveries are reported, default none. */
  readonly eventQueue?: EventQueue;
  /** Also collect prom-client's default process metrics, default true. */
  readonly processMetrics?: boolean;
}

/**
 * SampleMetrics are the Prometheus metrics of the sample server.
 */
export interface SampleMetrics {
  readonly registry: Registry;
  /** record counts a target call; fits the dispatcher's onCall. */
  record(record: TargetCallRecord): void;
  /** handler answers GET /metrics in the Prometheus text format. */
  handler(req: NodeServerRequest, res: NodeServerResponse): void;
}

/**
 * metricsPath is where the sample serves its metrics.
 */
export const metricsPath = "/metrics";

/**
 * createSampleMetrics returns the sample's metrics in their own registry:
 *
 * - connect_actions_target_calls_total{target, execution, outcome, async}
 * - connect_actions_target_call_duration_seconds{target, outcome} (histogram)
 * - connect_actions_event_deliveries_pending (gauge, read from the queue when scraped)
 * - the default Node.js process metrics of prom-client.
 */
export function createSampleMetrics(options: SampleMetricsOptions = {}): SampleMetrics {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry });
  const calls = new Counter({
    name: "connect_actions_target_calls_total",
    help: "Target calls by target name, execution ID, outcome (ok or error) and whether they were async.",
    labelNames: ["target", "execution", "outcome", "async"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "connect_actions_target_call_duration_seconds",
    help: "Duration of target calls, from the first byte sent to the last byte read.",
    labelNames: ["target", "outcome"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const queue = options.eventQueue;
  if (queue !== undefined) {
    new Gauge({
      name: "connect_actions_event_deliveries_pending",
      help: "Event deliveries not yet settled (due, scheduled for a retry or in flight).",
      registers: [registry],
      async collect() {
        this.set(await queue.pending());
      },
    });
  }
  // The label-bound children of each (target, execution) pair, four per pair (ok or error,
  // sync or async): a call counts after two map lookups, instead of prom-client hashing and
  // checking its labels twice. Like prom-client's own series, they are kept for good.
  type Children = { inc(): void; observe(seconds: number): void };
  const children = new Map<string, Map<string, (Children | undefined)[]>>();
  const childrenOf = (r: TargetCallRecord): Children => {
    let byExecution = children.get(r.targetName);
    if (byExecution === undefined) children.set(r.targetName, (byExecution = new Map()));
    let byKind = byExecution.get(r.executionId);
    if (byKind === undefined) byExecution.set(r.executionId, (byKind = []));
    const failed = r.error !== undefined;
    const kind = (failed ? 2 : 0) + (r.async ? 1 : 0);
    let c = byKind[kind];
    if (c === undefined) {
      const outcome = failed ? "error" : "ok";
      const counter = calls.labels({ target: r.targetName, execution: r.executionId, outcome, async: String(r.async) });
      const histogram = duration.labels({ target: r.targetName, outcome });
      c = byKind[kind] = { inc: () => counter.inc(), observe: (seconds) => histogram.observe(seconds) };
    }
    return c;
  };
  return {
    registry,
    record(r) {
      const c = childrenOf(r);
      c.inc();
      c.observe(r.durationMs / 1000);
    },
    handler(req, res) {
      if (req.method !== "GET") {
        res.writeHead(405, { allow: "GET" });
        res.end();
        return;
      }
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
          res.end(text);
        },
        (error: unknown) => {
          res.writeHead(500, { "content-type": "text/plain" });
          res.end(`metrics failed: ${error instanceof Error ? error.message : String(error)}`);
        },
      );
    },
  };
}
