import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createMemoryDeliveryLog } from "../src/delivery-log.js";
import type { TargetCallRecord } from "../src/target-dispatcher.js";

const record = (i: number, extra: Partial<TargetCallRecord> = {}): TargetCallRecord => ({
  targetId: `t${i % 2}`, targetName: `n${i % 2}`, executionId: "request", trigger: "/a.B/C", endpoint: "http://x/",
  status: 200, durationMs: i, error: undefined, attempt: 1, async: false, startTime: new Date(1000 * i), ...extra,
});

describe("createMemoryDeliveryLog", () => {
  it("lists records newest first with filters and paging", async () => {
    const log = createMemoryDeliveryLog();
    for (let i = 0; i < 10; i++) log.record(record(i, i === 4 ? { status: 500, error: "status 500" } : {}));
    const all = await log.list();
    expect(all.total).toBe(10);
    expect(all.records.map((r) => r.durationMs)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect((await log.list({ targetId: "t0" })).records.map((r) => r.durationMs)).toEqual([8, 6, 4, 2, 0]);
    expect((await log.list({ failedOnly: true })).records.map((r) => r.error)).toEqual(["status 500"]);
    expect((await log.list({ since: new Date(7000) })).total).toBe(3);
    expect((await log.list({ offset: 2, limit: 3 })).records.map((r) => r.durationMs)).toEqual([7, 6, 5]);
  });

  it("keeps only the latest records up to its capacity", async () => {
    const log = createMemoryDeliveryLog({ capacity: 3 });
    for (let i = 0; i < 7; i++) log.record(record(i));
    const page = await log.list();
    expect(page.records.map((r) => r.durationMs)).toEqual([6, 5, 4]);
    expect(page.records.map((r) => r.id)).toEqual(["7", "6", "5"]);
  });

  it("rejects a limit over 1000 or a negative offset", async () => {
    const log = createMemoryDeliveryLog();
    await expect(log.list({ limit: 1001 })).rejects.toMatchObject({ code: Code.InvalidArgument });
    await expect(log.list({ offset: -1 })).rejects.toMatchObject({ code: Code.InvalidArgument });
  });
});
