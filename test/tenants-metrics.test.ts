// The sample's /metrics per instance: an `instance` label for a bounded number of instances, and a bounded
// number of (target, execution) series per instance; everything beyond is counted, as "other".
import { describe, expect, it } from "vitest";
import type { TargetCallRecord } from "../src/dispatch/target-dispatcher.js";
import { createSampleMetrics } from "../src/sample/metrics.js";

const call = (instanceId: string, targetName: string, extra: Partial<TargetCallRecord> = {}): TargetCallRecord => ({
  instanceId,
  targetId: `${instanceId}/${targetName}`,
  targetName,
  executionId: "request/zitadel.user.v2.UserService",
  trigger: "/zitadel.user.v2.UserService/AddHumanUser",
  endpoint: "http://127.0.0.1:9/",
  status: 200,
  durationMs: 2,
  error: undefined,
  attempt: 1,
  async: false,
  startTime: new Date(),
  ...extra,
});

/** The series of a metric in the Prometheus text: labels -> value. */
function series(text: string, name: string): Map<Record<string, string>, number> {
  const out = new Map<Record<string, string>, number>();
  for (const line of text.split("\n")) {
    const match = new RegExp(`^${name}\\{(.*)\\} (\\S+)$`).exec(line);
    if (match === null) continue;
    const labels = Object.fromEntries([...match[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    out.set(labels, Number(match[2]));
  }
  return out;
}

describe("sample metrics per instance", () => {
  it("labels the first instances and their first series, and counts the rest as other", async () => {
    const metrics = createSampleMetrics({ processMetrics: false, maxInstances: 2, maxSeriesPerInstance: 2 });
    let recorded = 0;
    for (const instance of ["i0", "i1", "i2", "i3", "i4"]) {
      for (const target of ["t0", "t1", "t2", "t3"]) {
        for (let i = 0; i < 3; i++, recorded++) metrics.record(call(instance, target, i === 2 ? { error: "down" } : {}));
      }
    }
    const text = await metrics.registry.metrics();
    const calls = series(text, "connect_actions_target_calls_total");
    const labelSets = [...calls.keys()].map((l) => `${l.instance} ${l.target} ${l.outcome}`).sort();
    expect(labelSets).toEqual([
      "i0 other error", "i0 other ok", "i0 t0 error", "i0 t0 ok", "i0 t1 error", "i0 t1 ok",
      "i1 other error", "i1 other ok", "i1 t0 error", "i1 t0 ok", "i1 t1 error", "i1 t1 ok",
      "other other error", "other other ok",
    ]);
    const value = (instance: string, target: string, outcome: string) =>
      [...calls].find(([l]) => l.instance === instance && l.target === target && l.outcome === outcome)?.[1];
    expect(value("i0", "t0", "ok")).toBe(2);
    expect(value("i0", "other", "ok")).toBe(4); // t2 and t3
    expect(value("other", "other", "ok")).toBe(24); // i2, i3 and i4: 3 instances x 4 targets x 2
    expect(value("other", "other", "error")).toBe(12);
    // Nothing is lost: every call is counted once.
    expect([...calls.values()].reduce((a, b) => a + b, 0)).toBe(recorded);
    const durations = series(text, "connect_actions_target_call_duration_seconds_count");
    expect(new Set([...durations.keys()].map((l) => l.instance))).toEqual(new Set(["i0", "i1", "other"]));
    expect([...durations.values()].reduce((a, b) => a + b, 0)).toBe(recorded);
  });

  it("keeps to 10 instances with 100 series each by default, however many tenants call", async () => {
    const metrics = createSampleMetrics({ processMetrics: false });
    for (let instance = 0; instance < 50; instance++) {
      for (let target = 0; target < 150; target++) metrics.record(call(`tenant-${instance}`, `target-${target}`));
    }
    const calls = series(await metrics.registry.metrics(), "connect_actions_target_calls_total");
    const instances = new Set([...calls.keys()].map((l) => l.instance));
    expect(instances.size).toBe(11);
    expect(instances.has("other")).toBe(true);
    // 10 instances x (100 pairs + "other") + "other": a bound that does not grow with the tenants.
    expect(calls.size).toBe(10 * 101 + 1);
    expect([...calls.values()].reduce((a, b) => a + b, 0)).toBe(50 * 150);
  });
});
