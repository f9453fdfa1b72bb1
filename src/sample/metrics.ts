import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { EventQueue } from "../events/event-queue.js";
import type { NodeServerRequest, NodeServerResponse } from "../management/node-router-handler.js";
import type { TargetCallRecord } from "../dispatch/target-dispatcher.js";

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
  /**
   * record counts a target call, after the current I/O callbacks (or at the
   * next scrape, if that comes first); fits the dispatcher's onCall.
   */
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
  // Calls are counted after the current I/O callbacks, off the path of the RPC that made them
  // (its reply is written first); a scrape counts the waiting ones before it reads.
  let waiting: TargetCallRecord[] = [];
  let scheduled = false;
  const countWaiting = () => {
    const batch = waiting;
    waiting = [];
    for (const r of batch) {
      const outcome = r.error === undefined ? "ok" : "error";
      calls.inc({ target: r.targetName, execution: r.executionId, outcome, async: String(r.async) });
      duration.observe({ target: r.targetName, outcome }, r.durationMs / 1000);
    }
  };
  const calls = new Counter({
    name: "connect_actions_target_calls_total",
    help: "Target calls by target name, execution ID, outcome (ok or error) and whether they were async.",
    labelNames: ["target", "execution", "outcome", "async"] as const,
    registers: [registry],
    collect: countWaiting,
  });
  const duration = new Histogram({
    name: "connect_actions_target_call_duration_seconds",
    help: "Duration of target calls, from the first byte sent to the last byte read.",
    labelNames: ["target", "outcome"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
    collect: countWaiting,
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
  return {
    registry,
    record(r) {
      waiting.push(r);
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          countWaiting();
        });
      }
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
