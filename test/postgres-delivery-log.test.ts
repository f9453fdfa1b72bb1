import { Code } from "@connectrpc/connect";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../src/logger.js";
import { createPostgresDeliveryLog, type PostgresDeliveryLogOptions } from "../src/postgres/delivery-log.js";
import { deliveryRecord as record, describeDeliveryLogContract } from "../src/testing/delivery-log-contract.js";
import { startTcpProxy } from "./fixtures/tcp-proxy.js";
import { closedAfterEach, newSchemaName, openInFreshSchema, useTestDatabase } from "./helpers/postgres.js";
import { recordingLogger } from "./helpers/recording-logger.js";
import { codeOf, sleep, waitFor as poll } from "./helpers/wait.js";

const db = useTestDatabase();
const newSchema = () => newSchemaName("l");
// The log's waits poll every 10 ms (each poll lists the records).
const waitFor = (condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) => poll(condition, timeoutMs, what, 10);

const create = (options: PostgresDeliveryLogOptions = {}) =>
  createPostgresDeliveryLog({ connectionString: db.url, logger: silentLogger, ...options });

describeDeliveryLogContract("postgres", async () => {
  const { opened: log, cleanup } = await openInFreshSchema(db, "l", (schema) => create({ schema }));
  return { log, cleanup };
});

describe("postgres delivery log", () => {
  const open = closedAfterEach(create);

  it("lists the records of every instance together, newest first", async () => {
    const schema = newSchema();
    const [a, b] = [await open({ schema }), await open({ schema })];
    a.record(record(0));
    await a.flush();
    b.record(record(1));
    await b.flush();
    a.record(record(2));
    await a.flush();
    for (const log of [a, b]) {
      const page = await log.list();
      expect(page.total).toBe(3);
      expect(page.records.map((r) => r.durationMs)).toEqual([2, 1, 0]);
    }
    expect((await b.list({ targetId: "t0" })).records.map((r) => r.durationMs)).toEqual([2, 0]);
  });

  it("inserts on its own within the flush interval, and at once when a batch is full", async () => {
    const schema = newSchema();
    const [writer, reader] = [await open({ schema, flushIntervalMs: 100, batchSize: 50 }), await open({ schema })];
    writer.record(record(1));
    expect(writer.buffered()).toBe(1);
    expect((await reader.list()).total).toBe(0);
    // Nothing calls flush(): only the timer can insert it.
    await waitFor(async () => (await reader.list()).total === 1, 10_000, "the timed flush");

    const slow = await open({ schema, flushIntervalMs: 600_000, batchSize: 50 });
    for (let i = 0; i < 49; i++) slow.record(record(i));
    await sleep(300);
    expect((await reader.list()).total).toBe(1); // 49 < batchSize: still buffered
    slow.record(record(49));
    await waitFor(async () => (await reader.list()).total === 51, 10_000, "the full batch");
  });

  it("records thousands without waiting, and inserts them all in order", async () => {
    const log = await open({ schema: newSchema(), batchSize: 500 });
    // record() returns at once: all 5000 are taken before any insert could have finished.
    for (let i = 0; i < 5000; i++) log.record(record(i));
    expect(log.buffered()).toBe(5000);
    await log.flush();
    expect(log.buffered()).toBe(0);
    const page = await log.list({ limit: 1000 });
    expect(page.total).toBe(5000);
    expect(page.records.map((r) => r.durationMs)).toEqual(Array.from({ length: 1000 }, (_, i) => 4999 - i));
  });

  it("flushes on close, ignores records after it, and refuses to list once closed", async () => {
    const schema = newSchema();
    const [log, reader] = [await open({ schema, flushIntervalMs: 600_000 }), await open({ schema })];
    log.record(record(1));
    log.record(record(2));
    await log.close();
    expect((await reader.list()).total).toBe(2);
    log.record(record(3));
    expect(log.buffered()).toBe(0);
    expect(await codeOf(log.list())).toBe(Code.Unavailable);
    await log.close(); // twice is fine
    await log.flush();
  });

  it("survives a database outage: record never throws, records wait, and are inserted once it is back", async () => {
    const proxy = await startTcpProxy("127.0.0.1", Number(new URL(db.url).port || 5432));
    const logger = recordingLogger();
    const schema = newSchema();
    try {
      const log = await open({ connectionString: proxy.url(db.url), schema, logger, flushIntervalMs: 50, maxBuffered: 5 });
      const reader = await open({ schema });
      log.record(record(0));
      await log.flush();

      await proxy.stop();
      for (let i = 1; i <= 8; i++) expect(() => log.record(record(i))).not.toThrow();
      expect(await codeOf(log.flush())).toBe(Code.Unavailable);
      expect(log.buffered()).toBe(5); // the oldest three were dropped
      await sleep(300); // a few retries, with backoff
      expect(logger.entries.filter((e) => e.message.includes("could not insert records")).length).toBe(1);
      expect(logger.entries.some((e) => e.level === "warn" && e.message.includes("dropping the oldest"))).toBe(true);

      await proxy.start();
      await waitFor(async () => (await reader.list()).total === 6, 15_000, "the buffered records after the outage");
      expect((await reader.list()).records.map((r) => r.durationMs)).toEqual([8, 7, 6, 5, 4, 0]);
      // The rows are visible once committed, a moment before the log hears back: flush first.
      await log.flush();
      expect(log.buffered()).toBe(0);
      expect(logger.entries.some((e) => e.message.includes("inserted again") && e.attributes?.dropped === 3)).toBe(true);
    } finally {
      await proxy.close();
    }
  }, 30_000);

  it("closes without hanging while the database is down, and says how many records it lost", async () => {
    const proxy = await startTcpProxy("127.0.0.1", Number(new URL(db.url).port || 5432));
    const logger = recordingLogger();
    try {
      const log = await createPostgresDeliveryLog({ connectionString: proxy.url(db.url), schema: newSchema(), logger });
      await proxy.stop();
      log.record(record(1));
      await log.close();
      expect(logger.entries.find((e) => e.message.includes("closed with records not inserted"))?.attributes?.lost).toBe(1);
    } finally {
      await proxy.close();
    }
  });

  it("drops a batch the database refuses as data instead of retrying it forever, and flush says so", async () => {
    const schema = newSchema();
    const logger = recordingLogger();
    const log = await open({ schema, logger });
    await db.query(`ALTER TABLE ${pg.escapeIdentifier(schema)}.delivery_log ADD CONSTRAINT small CHECK (status < 1000)`);
    log.record(record(1, { status: 5000 }));
    expect(await codeOf(log.flush())).toBe(Code.DataLoss);
    expect(logger.entries.some((e) => e.level === "error" && e.message.includes("refused a batch"))).toBe(true);
    log.record(record(2));
    await log.flush();
    expect((await log.list()).records.map((r) => r.durationMs)).toEqual([2]);
  });

  it("stores what PostgreSQL could not: NUL characters, odd numbers, bad dates", async () => {
    const log = await open({ schema: newSchema() });
    log.record(record(1, { error: "bad \0 byte", targetName: "n\0", durationMs: Number.NaN, status: 1e12, startTime: new Date(Number.NaN) }));
    await log.flush();
    const [r] = (await log.list()).records;
    expect(r).toMatchObject({ error: "bad \uFFFD byte", targetName: "n\uFFFD", durationMs: 0, status: 0 });
    expect(Math.abs(r!.startTime.getTime() - Date.now())).toBeLessThan(10_000);
    expect(await log.list({ targetId: "t\0" })).toEqual({ total: 0, records: [] });
    expect(await codeOf(log.list({ since: new Date(Number.NaN) }))).toBe(Code.InvalidArgument);
  });

  it("prunes records older than the retention and beyond maxRecords", async () => {
    const schema = newSchema();
    const aged = await open({ schema, retentionMs: 500, pruneIntervalMs: Infinity });
    for (let i = 0; i < 3; i++) aged.record(record(i));
    await aged.flush();
    expect(await aged.prune()).toBe(0);
    await sleep(700);
    for (let i = 3; i < 5; i++) aged.record(record(i));
    await aged.flush();
    expect(await aged.prune()).toBe(3);
    expect((await aged.list()).records.map((r) => r.durationMs)).toEqual([4, 3]);

    const capped = await open({ schema, maxRecords: 3, pruneIntervalMs: Infinity });
    for (let i = 5; i < 10; i++) capped.record(record(i));
    await capped.flush();
    expect(await capped.prune()).toBe(4);
    expect((await capped.list()).records.map((r) => r.durationMs)).toEqual([9, 8, 7]);

    // Every instance prunes on its own, at start and then periodically.
    for (let i = 10; i < 15; i++) capped.record(record(i));
    await capped.flush();
    const periodic = await open({ schema, maxRecords: 2, pruneIntervalMs: 100 });
    await waitFor(async () => (await periodic.list()).total === 2, 3000, "the periodic prune");
  });

  it("rejects bad options with InvalidArgument and an unreachable database with Unavailable", async () => {
    expect(await codeOf(createPostgresDeliveryLog({ connectionString: db.url, pool: new pg.Pool() }))).toBe(Code.InvalidArgument);
    expect(await codeOf(createPostgresDeliveryLog({ schema: "" }))).toBe(Code.InvalidArgument);
    for (const bad of [{ batchSize: 0 }, { batchSize: 1.5 }, { flushIntervalMs: -1 }, { maxBuffered: Number.NaN }, { retentionMs: 0 }]) {
      expect(await codeOf(createPostgresDeliveryLog({ connectionString: db.url, ...bad }))).toBe(Code.InvalidArgument);
    }
    expect(
      await codeOf(createPostgresDeliveryLog({ connectionString: "postgres://postgres@127.0.0.1:1/postgres", logger: silentLogger })),
    ).toBe(Code.Unavailable);
  });
});
