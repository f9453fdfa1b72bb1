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
  /**
   * Instances that get an `instance` label of their own: the first ones seen,
   * default 10. The calls of any other instance are counted under
   * `instance="other"` (with `target` and `execution` "other" too).
   */
  readonly maxInstances?: number;
  /**
   * (target, execution) pairs of one instance that get labels of their own:
   * the first ones seen, default 100. The instance's other calls are counted
   * under `target="other", execution="other"`.
   */
  readonly maxSeriesPerInstance?: number;
}

/** otherLabel is the label value of calls beyond the bounds of createSampleMetrics. */
export const otherLabel = "other";

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
 * - connect_actions_target_calls_total{instance, target, execution, outcome, async}
 * - connect_actions_target_call_duration_seconds{instance, target, outcome} (histogram)
 * - connect_actions_event_deliveries_pending (gauge, read from the queue when scraped)
 * - the default Node.js process metrics of prom-client.
 *
 * Tenants choose their target names and executions, so the labels are kept
 * to bounded cardinality: at most maxInstances instances (10) with at most
 * maxSeriesPerInstance (target, execution) pairs each (100), the rest counted
 * as "other" (see otherLabel). The default instance's label is "".
 */
export function createSampleMetrics(options: SampleMetricsOptions = {}): SampleMetrics {
  const maxInstances = options.maxInstances ?? 10;
  const maxSeries = options.maxSeriesPerInstance ?? 100;
  /** The instances with labels of their own, and their pairs with labels of their own. */
  const labelled = new Map<string, Set<string>>();
  const labelsOf = (r: TargetCallRecord): { instance: string; target: string; execution: string } => {
    let pairs = labelled.get(r.instanceId);
    if (pairs === undefined) {
      if (labelled.size >= maxInstances) return { instance: otherLabel, target: otherLabel, execution: otherLabel };
      pairs = new Set();
      labelled.set(r.instanceId, pairs);
    }
    const pair = `${r.targetName}\u0000${r.executionId}`;
    if (!pairs.has(pair)) {
      if (pairs.size >= maxSeries) return { instance: r.instanceId, target: otherLabel, execution: otherLabel };
      pairs.add(pair);
    }
    return { instance: r.instanceId, target: r.targetName, execution: r.executionId };
  };
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
      const { instance, target, execution } = labelsOf(r);
      calls.inc({ instance, target, execution, outcome, async: String(r.async) });
      duration.observe({ instance, target, outcome }, r.durationMs / 1000);
    }
  };
  const calls = new Counter({
    name: "connect_actions_target_calls_total",
    help: 'Target calls by instance, target name, execution ID, outcome (ok or error) and whether they were async; "other" beyond the label bounds.',
    labelNames: ["instance", "target", "execution", "outcome", "async"] as const,
    registers: [registry],
    collect: countWaiting,
  });
  const duration = new Histogram({
    name: "connect_actions_target_call_duration_seconds",
    help: "Duration of target calls, from the first byte sent to the last byte read.",
    labelNames: ["instance", "target", "outcome"] as const,
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
