// Issue 11: excerpts of target calls in the delivery log. Opt-in, size-bounded, redacted (header values always,
// secret fields at any depth), truncated on a character boundary; off by default, and then without any JSON work;
// kept by the PostgreSQL log, also in a database that has records from before the excerpts.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createExcerpter, defaultExcerptBytes, redacted, truncateUtf8, truncationMark } from "../src/dispatch/excerpt.js";
import { createTargetDispatcher, type TargetCallRecord } from "../src/dispatch/target-dispatcher.js";
import { createEndpointGuard } from "../src/dispatch/endpoint-guard.js";
import { silentLogger } from "../src/logger.js";
import { createPostgresDeliveryLog } from "../src/postgres/delivery-log.js";
import { migrate, postgresMigrations } from "../src/postgres/migrations.js";
import { createActions } from "../src/setup.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import type { Target } from "../src/target.js";
import { deliveryRecord } from "../src/testing/delivery-log-contract.js";
import { newSchemaName, useTestDatabase } from "./helpers/postgres.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";
import { codeOf } from "./helpers/wait.js";

const db = useTestDatabase();

describe("createExcerpter", () => {
  it("checks maxBytes (default 2048) and the secret fields", () => {
    expect(createExcerpter().maxBytes).toBe(defaultExcerptBytes);
    expect(defaultExcerptBytes).toBe(2048);
    for (const maxBytes of [63, 65_537, 100.5, Number.NaN, -1, Infinity]) {
      expect(() => createExcerpter({ maxBytes }), String(maxBytes)).toThrow(/excerpts.maxBytes must be an integer from 64 to 65536/);
    }
    expect(createExcerpter({ maxBytes: 64 }).maxBytes).toBe(64);
    expect(() => createExcerpter({ secretFields: ["ok", ""] })).toThrow(/secretFields\[1\]/);
  });

  it("leaves out the values of headers and of secret fields at any depth, in any case", () => {
    const x = createExcerpter({ secretFields: ["password", "Token"] });
    const payload = JSON.stringify({
      fullMethod: "/a.B/C",
      instanceID: "i",
      request: { user: { name: "n", PASSWORD: "hunter2", tokens: ["t"], nested: [{ token: { deep: 1 } }] } },
      headers: { "Content-Type": ["application/json"], Authorization: ["Bearer x"] },
    });
    expect(JSON.parse(x.payload(payload))).toEqual({
      fullMethod: "/a.B/C",
      instanceID: "i",
      request: { user: { name: "n", PASSWORD: redacted, tokens: ["t"], nested: [{ token: redacted }] } },
      headers: { "Content-Type": redacted, Authorization: redacted },
    });
    // Without secret fields, headers are still left out; other members stay.
    expect(JSON.parse(createExcerpter().payload(payload))).toMatchObject({ headers: { Authorization: redacted }, request: { user: { PASSWORD: "hunter2" } } });
    // "__proto__" stays a plain key.
    expect(x.payload('{"__proto__":{"password":"p"}}')).toBe('{"__proto__":{"password":"[redacted]"}}');
    // Answers: JSON is redacted alike; other text is kept as it is; an empty body has no excerpt.
    expect(x.answer(Buffer.from('{"Token":"abc","ok":true}'))).toBe('{"Token":"[redacted]","ok":true}');
    expect(x.answer("plain text token=abc")).toBe("plain text token=abc");
    expect(x.answer(Buffer.alloc(0))).toBe("");
  });

  it("truncates to maxBytes UTF-8 bytes without splitting a character, marking the cut", () => {
    const x = createExcerpter({ maxBytes: 64 });
    const value = "aé🦄".repeat(40);
    const excerpt = x.payload(JSON.stringify({ value }));
    expect(excerpt.endsWith(truncationMark)).toBe(true);
    expect(Buffer.byteLength(excerpt)).toBeLessThanOrEqual(64);
    const kept = excerpt.slice(0, -truncationMark.length);
    expect(JSON.stringify({ value }).startsWith(kept)).toBe(true);
    expect(kept).not.toMatch(/[\ud800-\udbff]$/); // no half of a surrogate pair
    // The longest start that fits: one more character would not.
    const next = [...JSON.stringify({ value }).slice(kept.length)][0]!;
    expect(Buffer.byteLength(kept + next + truncationMark)).toBeGreaterThan(64);
    // Every cut point of a text of 1-, 2-, 3- and 4-byte characters.
    const text = "a\u00e9\u20ac\ud83e\udd84".repeat(10);
    for (let max = 4; max <= Buffer.byteLength(text) + 1; max++) {
      const cut = truncateUtf8(text, max);
      expect(Buffer.byteLength(cut), String(max)).toBeLessThanOrEqual(max);
      if (cut !== text) {
        const start = cut.slice(0, -1);
        expect(text.startsWith(start)).toBe(true);
        expect(Buffer.from(start, "utf8").toString("utf8")).toBe(start);
        expect(Buffer.byteLength(start + [...text.slice(start.length)][0]! + truncationMark)).toBeGreaterThan(max);
      }
    }
    expect(truncateUtf8("short", 64)).toBe("short");
  });
});

describe("excerpts in target calls", () => {
  let targets: TargetServer;
  afterEach(async () => {
    await targets?.close();
  });
  const target = (endpoint: string, type: Target["type"] = "webhook"): Target => ({
    id: "1", instanceId: "", name: "t", type, interruptOnError: true, endpoint, timeoutMs: 5000, signingKey: "k".repeat(36),
    payloadType: "json", creationDate: new Date(0), changeDate: new Date(0),
  });
  const body = JSON.stringify({ fullMethod: "/a.B/C", request: { secret: "s", name: "n" }, headers: { Host: ["h"] } });

  it("are off by default: records have none, and the call does no JSON work for them", async () => {
    targets = await startTargetServer();
    const records: TargetCallRecord[] = [];
    const off = createTargetDispatcher({ logger: silentLogger, endpointGuard: createEndpointGuard(), onCall: (r) => records.push(r) });
    const on = createTargetDispatcher({
      logger: silentLogger,
      endpointGuard: createEndpointGuard(),
      onCall: (r) => records.push(r),
      excerpts: createExcerpter({ secretFields: ["secret"] }),
    });
    try {
      // A bare target that reads nothing as JSON, answering 200 with an empty body.
      const bare = http.createServer((req, res) => {
        req.resume();
        req.on("end", () => res.end());
      });
      await new Promise<void>((resolve) => bare.listen(0, "127.0.0.1", resolve));
      const bareTarget = target(`http://127.0.0.1:${(bare.address() as AddressInfo).port}/`);
      // A first call of each opens its connection (undici copies its options as JSON then).
      await off.call({ target: bareTarget, executionId: "request", body });
      await on.call({ target: bareTarget, executionId: "request", body });
      records.length = 0;
      const parse = vi.spyOn(JSON, "parse");
      const stringify = vi.spyOn(JSON, "stringify");
      try {
        // Without excerpts, nothing is parsed or written as JSON.
        await off.call({ target: bareTarget, executionId: "request", body });
        expect([parse.mock.calls.length, stringify.mock.calls.length]).toEqual([0, 0]);
        await on.call({ target: bareTarget, executionId: "request", body });
        expect(parse.mock.calls.length).toBeGreaterThan(0);
      } finally {
        parse.mockRestore();
        stringify.mockRestore();
        bare.closeAllConnections();
        await new Promise((resolve) => bare.close(resolve));
      }
      expect(records[0]).not.toHaveProperty("requestExcerpt");
      expect(records[0]).not.toHaveProperty("responseExcerpt");
      expect(records[0]).not.toHaveProperty("test");
      expect(records[1]).toMatchObject({
        requestExcerpt: '{"fullMethod":"/a.B/C","request":{"secret":"[redacted]","name":"n"},"headers":{"Host":"[redacted]"}}',
        responseExcerpt: "",
      });
      // The answer of a failing target is kept too, redacted.
      targets.route("/fail", { status: 500, body: { error: "boom", secret: "x" } });
      await expect(on.call({ target: target(targets.endpoint("/fail")), executionId: "request", body })).rejects.toMatchObject({
        code: Code.FailedPrecondition,
      });
      expect(records[2]).toMatchObject({ status: 500, responseExcerpt: '{"error":"boom","secret":"[redacted]"}' });
    } finally {
      await off.close();
      await on.close();
    }
  });

  it("createActions keeps them in the delivery log only when asked", async () => {
    targets = await startTargetServer();
    targets.route("/answer", { body: { token: "t", ok: 1 } });
    for (const excerpts of [undefined, false, true, { secretFields: ["token"], maxBytes: 100 }] as const) {
      const actions = createActions({ store: createMemoryStore(), worker: false, logger: silentLogger, endpointGuard: createEndpointGuard(), excerpts });
      try {
        await actions.dispatcher.call({ target: target(targets.endpoint("/answer"), "call"), executionId: "request", body });
        const [record] = (await actions.deliveryLog.list()).records;
        if (excerpts === undefined || excerpts === false) {
          expect(record, String(excerpts)).not.toHaveProperty("requestExcerpt");
          expect(record).not.toHaveProperty("responseExcerpt");
        } else if (excerpts === true) {
          expect(record).toMatchObject({ responseExcerpt: '{"token":"t","ok":1}' });
          expect(JSON.parse(record!.requestExcerpt!)).toMatchObject({ request: { secret: "s" }, headers: { Host: redacted } });
        } else {
          expect(record).toMatchObject({ responseExcerpt: '{"token":"[redacted]","ok":1}' });
        }
      } finally {
        await actions.close();
      }
    }
    expect(() => createActions({ store: createMemoryStore(), worker: false, logger: silentLogger, excerpts: { maxBytes: 1 } })).toThrow(/maxBytes/);
  });
});

describe("excerpts in the PostgreSQL delivery log", () => {
  it("migrate a database with records from before them, which keep working without excerpts", async () => {
    const schema = newSchemaName("x");
    const q = pg.escapeIdentifier(schema);
    const pool = new pg.Pool({ connectionString: db.url });
    try {
      await migrate(pool, schema, postgresMigrations.filter((m) => m.version <= 7));
      await pool.query(
        `INSERT INTO ${q}.delivery_log (instance_id, target_id, target_name, execution_id, trigger, endpoint, status, duration_ms, error, attempt, async, start_time)
         VALUES ('', '1', 'old', 'request', '/a.B/C', 'http://127.0.0.1:9/', 500, 1, 'status 500', 1, false, $1)`,
        [new Date("2025-01-02T03:04:05.000Z")],
      );
    } finally {
      await pool.end();
    }
    const log = await createPostgresDeliveryLog({ connectionString: db.url, schema, logger: silentLogger });
    try {
      expect(postgresMigrations.at(-1)).toMatchObject({ version: 8, name: "delivery-log-excerpts" });
      const [old] = (await log.list()).records;
      expect(old).toMatchObject({ targetName: "old", error: "status 500" });
      expect(old).not.toHaveProperty("requestExcerpt");
      expect(old).not.toHaveProperty("test");
      const fresh = deliveryRecord(5, { requestExcerpt: '{"a":"\u00e9"}', responseExcerpt: "text\u0000with nul", test: true });
      log.record(fresh);
      await log.flush();
      const page = await log.list();
      expect(page.total).toBe(2);
      // NUL cannot be stored in text: it is replaced, as in every other text field of the log.
      expect(page.records[0]).toMatchObject({ requestExcerpt: '{"a":"\u00e9"}', test: true });
      expect(page.records[0]!.responseExcerpt).toMatch(/^text.with nul$/);
      expect((await log.list({ succeededOnly: true })).records.map((r) => r.targetName)).toEqual(["n1"]);
      expect((await log.list({ failedOnly: true })).records.map((r) => r.targetName)).toEqual(["old"]);
      expect(await codeOf(log.list({ failedOnly: true, succeededOnly: true }))).toBe(Code.InvalidArgument);
    } finally {
      await log.close();
    }
  });
});
