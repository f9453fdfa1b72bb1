// The contract every DeliveryLog implementation passes. A log's test file calls
// describeDeliveryLogContract with a factory that returns a fresh, empty log.
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { DeliveryLog } from "../store/delivery-log.js";
import type { TargetCallRecord } from "../dispatch/target-dispatcher.js";

/**
 * DeliveryLogFixture is what a log's factory gives describeDeliveryLogContract:
 * a fresh, empty log, and how to dispose of it.
 */
export interface DeliveryLogFixture {
  readonly log: DeliveryLog;
  cleanup(): Promise<void>;
}

/**
 * deliveryRecord returns the i-th record of a test: targets t0 and t1 alternate, startTime is i seconds after the
 * epoch, the instance is the default one ("").
 */
export const deliveryRecord = (i: number, extra: Partial<TargetCallRecord> = {}): TargetCallRecord => ({
  instanceId: "", targetId: `t${i % 2}`, targetName: `n${i % 2}`, executionId: "request", trigger: "/a.B/C", endpoint: "http://x/",
  status: 200, durationMs: i, error: undefined, attempt: 1, async: false, startTime: new Date(1000 * i), ...extra,
});

/** describeDeliveryLogContract declares the DeliveryLog contract tests for the logs `factory` makes. */
export function describeDeliveryLogContract(name: string, factory: () => Promise<DeliveryLogFixture>): void {
  describe(`DeliveryLog contract: ${name}`, () => {
    let fixture: DeliveryLogFixture;
    let log: DeliveryLog;
    beforeEach(async () => {
      fixture = await factory();
      log = fixture.log;
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    it("lists records newest first with filters and paging", async () => {
      for (let i = 0; i < 10; i++) log.record(deliveryRecord(i, i === 4 ? { status: 500, error: "status 500" } : {}));
      await log.flush();
      const all = await log.list();
      expect(all.total).toBe(10);
      expect(all.records.map((r) => r.durationMs)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      expect((await log.list({ targetId: "t0" })).records.map((r) => r.durationMs)).toEqual([8, 6, 4, 2, 0]);
      expect((await log.list({ targetId: "t0" })).total).toBe(5);
      expect((await log.list({ failedOnly: true })).records.map((r) => r.error)).toEqual(["status 500"]);
      expect((await log.list({ since: new Date(7000) })).total).toBe(3);
      expect((await log.list({ offset: 2, limit: 3 })).records.map((r) => r.durationMs)).toEqual([7, 6, 5]);
      expect(await log.list({ offset: 2, limit: 3 })).toMatchObject({ total: 10 });
      expect(await log.list({ offset: 20 })).toEqual({ total: 10, records: [] });
      expect(await log.list({ executionId: "response" })).toEqual({ total: 0, records: [] });
      expect((await log.list({ targetId: "t1", since: new Date(4000), limit: 2 })).records.map((r) => r.durationMs)).toEqual([9, 7]);
    });

    it("keeps every field of a record, and gives IDs that increase with recording order", async () => {
      const records = [
        deliveryRecord(1, { status: 0, error: "timed out after 1000 ms", attempt: 3, async: true, durationMs: 1000.25 }),
        deliveryRecord(2, { executionId: "event/user.human.added", trigger: "user.human.added", startTime: new Date("2026-01-02T03:04:05.678Z") }),
        deliveryRecord(3, { error: "" }),
      ];
      for (const r of records) log.record(r);
      await log.flush();
      const page = await log.list();
      expect(page.records).toEqual(records.map((r) => ({ ...r, id: expect.any(String) })).reverse());
      const ids = page.records.map((r) => BigInt(r.id)).reverse();
      expect(ids[0]! < ids[1]! && ids[1]! < ids[2]!).toBe(true);
      // An empty error is a failure too: only undefined means success.
      expect((await log.list({ failedOnly: true })).records.map((r) => r.durationMs)).toEqual([3, 1000.25]);
    });

    it("keeps the records of each instance apart when asked for one instance", async () => {
      for (let i = 0; i < 6; i++) log.record(deliveryRecord(i, { instanceId: ["", "a", "b"][i % 3]! }));
      await log.flush();
      expect((await log.list()).total).toBe(6);
      expect((await log.list({ instanceId: "a" })).records.map((r) => [r.instanceId, r.durationMs])).toEqual([
        ["a", 4],
        ["a", 1],
      ]);
      expect((await log.list({ instanceId: "" })).records.map((r) => r.durationMs)).toEqual([3, 0]);
      expect(await log.list({ instanceId: "c" })).toEqual({ total: 0, records: [] });
      expect((await log.list({ instanceId: "b", targetId: "t1" })).records.map((r) => r.durationMs)).toEqual([5]);
    });

    it("records without throwing or waiting, and flush makes everything recorded so far listable", async () => {
      expect(log.record(deliveryRecord(1))).toBeUndefined();
      await log.flush();
      for (let i = 0; i < 3; i++) log.record(deliveryRecord(i));
      await log.flush();
      await log.flush();
      expect((await log.list()).total).toBe(4);
    });

    it("keeps excerpts and the test mark, and leaves them out of records that have none", async () => {
      const withExcerpts = deliveryRecord(1, {
        requestExcerpt: '{"fullMethod":"/a.B/C","headers":{"Host":"[redacted]"},"request":{"name":"é…',
        responseExcerpt: "not json: \u00e9 \ud83e\udd84",
        test: true,
      });
      const plain = deliveryRecord(2);
      const emptyExcerpts = deliveryRecord(3, { requestExcerpt: "", responseExcerpt: "", test: false, status: 0, error: "timed out" });
      for (const r of [withExcerpts, plain, emptyExcerpts]) log.record(r);
      await log.flush();
      const [third, second, first] = (await log.list()).records;
      expect(first).toEqual({ ...withExcerpts, id: expect.any(String) });
      expect(second).toEqual({ ...plain, id: expect.any(String) });
      expect(second).not.toHaveProperty("requestExcerpt");
      expect(second).not.toHaveProperty("responseExcerpt");
      expect(second).not.toHaveProperty("test");
      expect(third).toMatchObject({ requestExcerpt: "", responseExcerpt: "", test: false });
    });

    it("lists only succeeded or only failed calls, and refuses both at once", async () => {
      for (let i = 0; i < 6; i++) log.record(deliveryRecord(i, i % 3 === 0 ? { status: 500, error: "status 500" } : {}));
      await log.flush();
      expect((await log.list({ succeededOnly: true })).records.map((r) => r.durationMs)).toEqual([5, 4, 2, 1]);
      expect((await log.list({ succeededOnly: true, targetId: "t1" })).total).toBe(2);
      expect((await log.list({ failedOnly: true })).records.map((r) => r.durationMs)).toEqual([3, 0]);
      expect((await log.list({ succeededOnly: false, failedOnly: false })).total).toBe(6);
      await expect(log.list({ failedOnly: true, succeededOnly: true })).rejects.toMatchObject({ code: Code.InvalidArgument });
    });

    it("rejects a limit over 1000 or a negative offset", async () => {
      await expect(log.list({ limit: 1001 })).rejects.toMatchObject({ code: Code.InvalidArgument });
      await expect(log.list({ offset: -1 })).rejects.toMatchObject({ code: Code.InvalidArgument });
      await expect(log.list({ limit: 1.5 })).rejects.toMatchObject({ code: Code.InvalidArgument });
      expect((await log.list({ limit: 1000 })).records).toEqual([]);
    });
  });
}
