import { describe, expect, it } from "vitest";
import { createMemoryDeliveryLog } from "../src/store/delivery-log.js";
import { deliveryRecord as record, describeDeliveryLogContract } from "../src/testing/delivery-log-contract.js";

describeDeliveryLogContract("memory", async () => {
  const log = createMemoryDeliveryLog();
  return { log, cleanup: () => log.close() };
});

describe("createMemoryDeliveryLog", () => {
  it("keeps only the latest records up to its capacity", async () => {
    const log = createMemoryDeliveryLog({ capacity: 3 });
    for (let i = 0; i < 7; i++) log.record(record(i));
    const page = await log.list();
    expect(page.records.map((r) => r.durationMs)).toEqual([6, 5, 4]);
    expect(page.records.map((r) => r.id)).toEqual(["7", "6", "5"]);
  });
});
