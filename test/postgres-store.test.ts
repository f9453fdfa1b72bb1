import { execFile } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { createExecutionPlanner } from "../src/plan/execution-planner.js";
import { migrate, postgresMigrations } from "../src/postgres/migrations.js";
import { createPostgresStore, type PostgresStoreOptions } from "../src/postgres/store.js";
import { createPostgresDeliveryLog } from "../src/postgres/delivery-log.js";
import { silentLogger } from "../src/logger.js";
import type { TargetInput } from "../src/target.js";
import { closedAfterEach, newSchemaName, openInFreshSchema, useTestDatabase } from "./helpers/postgres.js";
import { recordingLogger } from "./helpers/recording-logger.js";
import { codeOf, waitFor } from "./helpers/wait.js";
import { describeStoreContract } from "../src/testing/store-contract.js";

const db = useTestDatabase();
const newSchema = () => newSchemaName("s");

const hook = (name: string): TargetInput => ({ name, type: "webhook", endpoint: `http://127.0.0.1:9/${name}`, timeoutMs: 1000 });

const create = (options: PostgresStoreOptions = {}) =>
  createPostgresStore({ connectionString: db.url, logger: recordingLogger(), ...options });

describeStoreContract("postgres", async ({ now, limits }) => {
  const { opened: store, cleanup } = await openInFreshSchema(db, "s", (schema) => create({ schema, now, ...limits }));
  return { store, cleanup };
});

describe("postgres store", () => {
  const open = closedAfterEach(create);

  describe("two instances on one database", () => {
    it("tell each other's watchers and snapshots of every kind of change", async () => {
      const schema = newSchema();
      const a = await open({ schema });
      const b = await open({ schema });
      let calls = 0;
      b.watch(() => calls++);

      const t = await a.createTarget(hook("shared"));
      await waitFor(() => calls >= 1, 10_000, "B's watcher");
      expect((await b.snapshot()).targets).toEqual([t]);

      let before = calls;
      const u = await a.updateTarget(t.id, { timeoutMs: 2000 });
      await waitFor(() => calls > before, 10_000, "B's watcher after an update");
      expect(await b.getTarget(t.id)).toEqual(u);

      before = calls;
      const e = await a.setExecution({ type: "request", all: true }, [{ target: t.id }]);
      await waitFor(() => calls > before, 10_000, "B's watcher after setExecution");
      expect((await b.snapshot()).executions).toEqual([e]);

      // A new active public key changes the target: B's plans load it with the key.
      const ecPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }) as string;
      const key = await a.addPublicKey(t.id, { publicKey: ecPem });
      const announced: string[] = [];
      b.watch((c) => announced.push(...(c.targetIds ?? [])));
      await a.activatePublicKey(t.id, key.keyId);
      await waitFor(() => announced.includes(t.id), 5000, "B's watcher after an activation");
      expect((await b.getTarget(t.id))?.encryptionKey).toEqual({ keyId: key.keyId, publicKey: ecPem });
      expect((await b.listPublicKeys(t.id)).map((k) => k.active)).toEqual([true]);

      before = calls;
      await a.deleteTarget(t.id);
      await waitFor(() => calls > before, 10_000, "B's watcher after a deletion");
      expect(await b.snapshot()).toEqual({ targets: [], executions: [] });
    });

    it("do not tell a store's watchers twice of its own changes", async () => {
      const schema = newSchema();
      const a = await open({ schema });
      const b = await open({ schema });
      let aCalls = 0;
      let bCalls = 0;
      a.watch(() => aCalls++);
      b.watch(() => bCalls++);
      await a.createTarget(hook("once"));
      expect(aCalls).toBe(1);
      await waitFor(() => bCalls === 1, 1000, "B's watcher");
      await new Promise((r) => setTimeout(r, 200));
      expect(aCalls).toBe(1);
      expect(bCalls).toBe(1);
    });

    it("do not announce writes that change nothing or fail", async () => {
      const schema = newSchema();
      const a = await open({ schema });
      const b = await open({ schema });
      let calls = 0;
      b.watch(() => calls++);
      const t = await a.createTarget(hook("quiet"));
      await waitFor(() => calls === 1, 1000, "B to hear of the target");
      calls = 0;
      a.watch(() => calls++);
      expect(await a.deleteTarget("404")).toBe(false);
      expect(await a.setExecution({ type: "request", all: true }, [])).toBeUndefined();
      expect(await codeOf(a.createTarget(hook("quiet")))).toBe(Code.AlreadyExists);
      expect(await codeOf(a.setExecution({ type: "request", all: true }, [{ target: t.id }, { target: "404" }]))).toBe(Code.NotFound);
      await new Promise((r) => setTimeout(r, 200));
      expect(calls).toBe(0);
    });

    it("keep an ExecutionPlanner on B current with changes made through A", async () => {
      const schema = newSchema();
      const a = await open({ schema });
      const b = await open({ schema });
      const planner = createExecutionPlanner(b);
      const method = "/zitadel.user.v2.UserService/AddHumanUser";
      expect((await planner.plan()).forMethod(method).request).toBeUndefined();

      const t = await a.createTarget(hook("planned"));
      await a.setExecution({ type: "request", service: "zitadel.user.v2.UserService" }, [{ target: t.id }]);
      await waitFor(async () => (await planner.plan()).forMethod(method).request?.targets[0]?.id === t.id, 10_000, "the plan on B");
      expect((await planner.plan()).forMethod(method).request?.executionId).toBe("request/zitadel.user.v2.UserService");

      await a.deleteTarget(t.id);
      await waitFor(async () => (await planner.plan()).forMethod(method).request === undefined, 10_000, "the plan on B to drop the target");
      planner.close();
    });

    it("serialize include checks across instances: of two writes that close a cycle, exactly one wins", async () => {
      const schema = newSchema();
      const a = await open({ schema });
      const b = await open({ schema });
      const t = await a.createTarget(hook("t"));
      for (let i = 0; i < 10; i++) {
        const x = { type: "function" as const, name: `x${i}` };
        const y = { type: "function" as const, name: `y${i}` };
        await a.setExecution(x, [{ target: t.id }]);
        await a.setExecution(y, [{ target: t.id }]);
        const results = await Promise.allSettled([
          a.setExecution(x, [{ target: t.id }, { include: `function/y${i}` }]),
          b.setExecution(y, [{ target: t.id }, { include: `function/x${i}` }]),
        ]);
        expect(results.filter((r) => r.status === "fulfilled").length).toBe(1);
        const rejected = results.find((r) => r.status === "rejected");
        expect(ConnectError.from(rejected?.reason).code).toBe(Code.InvalidArgument);
      }
    });

    it("never leave an execution pointing at a target deleted concurrently", async () => {
      const schema = newSchema();
      const a = await open({ schema });
      const b = await open({ schema });
      const keep = await a.createTarget(hook("keep"));
      for (let i = 0; i < 10; i++) {
        const t = await a.createTarget(hook(`doomed${i}`));
        const list = i % 2 === 0 ? [{ target: t.id }] : [{ target: keep.id }, { target: t.id }];
        await Promise.allSettled([b.setExecution({ type: "function", name: `f${i}` }, list), a.deleteTarget(t.id)]);
      }
      const snap = await a.snapshot();
      const ids = new Set(snap.targets.map((t) => t.id));
      for (const e of snap.executions) {
        expect(e.targets.length).toBeGreaterThan(0);
        for (const entry of e.targets) {
          if ("target" in entry) expect(ids.has(entry.target)).toBe(true);
        }
      }
    });

    it("read back exactly the dates a write returned", async () => {
      const schema = newSchema();
      const fixed = new Date("2024-02-29T12:34:56.789Z");
      const a = await open({ schema, now: () => fixed });
      const b = await open({ schema });
      const t = await a.createTarget(hook("dated"));
      expect(t.creationDate.getTime()).toBe(fixed.getTime());
      expect(t.creationDate).not.toBe(fixed);
      const e = await a.setExecution({ type: "event", group: "user.human" }, [{ target: t.id }]);
      expect(await b.getTarget(t.id)).toEqual(t);
      expect(await b.getExecution("event/user.human.*")).toEqual(e);
      expect((await b.getTarget(t.id))?.changeDate.toISOString()).toBe("2024-02-29T12:34:56.789Z");
    });
  });

  describe("migrations", () => {
    it("are applied once and are idempotent", async () => {
      const schema = newSchema();
      const pool = new pg.Pool({ connectionString: db.url });
      try {
        expect(await migrate(pool, schema)).toEqual(postgresMigrations.map((m) => m.version));
        expect(await migrate(pool, schema)).toEqual([]);
        const client = await pool.connect();
        try {
          expect(await migrate(client, schema)).toEqual([]);
        } finally {
          client.release();
        }
        const { rows } = await pool.query(`SELECT version, name FROM ${pg.escapeIdentifier(schema)}.migrations ORDER BY version`);
        expect(rows).toEqual(postgresMigrations.map((m) => ({ version: m.version, name: m.name })));
      } finally {
        await pool.end();
      }
    });

    it("are safe when several stores start at once", async () => {
      const schema = newSchema();
      const stores = await Promise.all(Array.from({ length: 5 }, () => open({ schema })));
      const rows = await db.query<{ version: number }>(`SELECT version FROM ${pg.escapeIdentifier(schema)}.migrations ORDER BY version`);
      expect(rows.map((r) => r.version)).toEqual(postgresMigrations.map((m) => m.version));
      const t = await stores[0]!.createTarget(hook("after-race"));
      expect(await stores[4]!.getTarget(t.id)).toEqual(t);
    });

    it("apply each version exactly once when run concurrently", async () => {
      const schema = newSchema();
      const pool = new pg.Pool({ connectionString: db.url, max: 8 });
      try {
        const applied = await Promise.all(Array.from({ length: 6 }, () => migrate(pool, schema)));
        expect(applied.flat().sort((x, y) => x - y)).toEqual(postgresMigrations.map((m) => m.version));
      } finally {
        await pool.end();
      }
    });

    it("apply appended migrations to an existing schema, all or nothing", async () => {
      const schema = newSchema();
      const pool = new pg.Pool({ connectionString: db.url });
      try {
        await migrate(pool, schema);
        const next = postgresMigrations.at(-1)!.version + 1;
        const failing = [
          ...postgresMigrations,
          { version: next, name: "extra", sql: (s: string) => `CREATE TABLE ${s}.extra (id int)` },
          { version: next + 1, name: "broken", sql: () => "SELECT * FROM no_such_table" },
        ];
        expect(await codeOf(migrate(pool, schema, failing))).toBe(Code.Internal);
        const { rows } = await pool.query("SELECT to_regclass($1) AS extra", [`${schema}.extra`]);
        expect(rows[0].extra).toBeNull();
        expect(await migrate(pool, schema, failing.slice(0, -1))).toEqual([next]);
        expect(await migrate(pool, schema, failing.slice(0, -1))).toEqual([]);
      } finally {
        await pool.end();
      }
    });

    it("keep the targets, executions and delivery records written before instances in the default instance", async () => {
      const schema = newSchema();
      const q = pg.escapeIdentifier(schema);
      const pool = new pg.Pool({ connectionString: db.url });
      try {
        // The schema as the release before instances left it, with data.
        await migrate(pool, schema, postgresMigrations.filter((m) => m.version <= 3));
        const date = new Date("2025-01-02T03:04:05.000Z");
        await pool.query(
          `INSERT INTO ${q}.targets (id, name, type, interrupt_on_error, endpoint, timeout_ms, signing_key, creation_date, change_date)
           VALUES ('1', 'old', 'call', true, 'http://127.0.0.1:9/', 1000, $1, $2, $2)`,
          ["k".repeat(36), date],
        );
        await pool.query(
          `INSERT INTO ${q}.executions (id, condition, targets, creation_date, change_date)
           VALUES ('request', '{"type":"request","all":true}', '[{"target":"1"}]', $1, $1)`,
          [date],
        );
        await pool.query(
          `INSERT INTO ${q}.delivery_log (target_id, target_name, execution_id, trigger, endpoint, status, duration_ms, attempt, async, start_time)
           VALUES ('1', 'old', 'request', '/a.B/C', 'http://127.0.0.1:9/', 200, 1, 1, false, $1)`,
          [date],
        );
      } finally {
        await pool.end();
      }
      const store = await open({ schema });
      expect(await store.getTarget("1")).toMatchObject({ id: "1", instanceId: "", name: "old", type: "call" });
      expect((await store.getExecution("request"))?.targets).toEqual([{ target: "1" }]);
      expect(await store.forInstance("other").getTarget("1")).toBeUndefined();
      // Names are now unique per instance only.
      await store.forInstance("other").createTarget(hook("old"));
      expect(await codeOf(store.createTarget(hook("old")))).toBe(Code.AlreadyExists);
      const log = await createPostgresDeliveryLog({ connectionString: db.url, schema, logger: silentLogger });
      try {
        expect((await log.list({ instanceId: "" })).records.map((r) => [r.instanceId, r.targetName])).toEqual([["", "old"]]);
      } finally {
        await log.close();
      }
    });

    it("index the targets and includes of executions written before execution references", async () => {
      const schema = newSchema();
      const q = pg.escapeIdentifier(schema);
      const pool = new pg.Pool({ connectionString: db.url });
      try {
        await migrate(pool, schema, postgresMigrations.filter((m) => m.version <= 4));
        const date = new Date("2025-01-02T03:04:05.000Z");
        for (const [instance, id] of [["", "1"], ["", "2"], ["x", "3"]] as const) {
          await pool.query(
            `INSERT INTO ${q}.targets (instance_id, id, name, type, interrupt_on_error, endpoint, timeout_ms, signing_key, creation_date, change_date)
             VALUES ($1, $2, $2, 'webhook', false, 'http://127.0.0.1:9/', 1000, $3, $4, $4)`,
            [instance, id, "k".repeat(36), date],
          );
        }
        const execution = (instance: string, id: string, targets: unknown[]) =>
          pool.query(
            `INSERT INTO ${q}.executions (instance_id, id, condition, targets, creation_date, change_date)
             VALUES ($1, $2, $3, $4, $5, $5)`,
            [instance, id, JSON.stringify({ type: "function", name: id.slice("function/".length) }), JSON.stringify(targets), date],
          );
        await execution("", "function/a", [{ target: "1" }]);
        await execution("", "function/b", [{ target: "2" }, { include: "function/a" }]);
        await execution("", "function/c", [{ include: "function/b" }]);
        await execution("x", "function/a", [{ target: "3" }]);
      } finally {
        await pool.end();
      }
      const store = await open({ schema });
      // The include chain c -> b -> a is known: closing a cycle is refused.
      expect(await codeOf(store.setExecution({ type: "function", name: "a" }, [{ target: "1" }, { include: "function/c" }]))).toBe(
        Code.InvalidArgument,
      );
      // Deleting target 1 empties a, which leaves b with target 2 only; c still includes b.
      expect(await store.deleteTarget("1")).toBe(true);
      expect((await store.listExecutions()).map((e) => [e.id, e.targets])).toEqual([
        ["function/b", [{ target: "2" }]],
        ["function/c", [{ include: "function/b" }]],
      ]);
      // Deleting target 2 empties b, and so c, in cascade; instance x keeps its own.
      expect(await store.deleteTarget("2")).toBe(true);
      expect(await store.listExecutions()).toEqual([]);
      expect((await store.forInstance("x").listExecutions()).map((e) => e.id)).toEqual(["function/a"]);
      expect(await db.query(`SELECT instance_id, execution_id, kind, ref_id FROM ${q}.execution_refs`)).toEqual([
        { instance_id: "x", execution_id: "function/a", kind: "target", ref_id: "3" },
      ]);
    });

    it("reject versions out of order", async () => {
      const pool = new pg.Pool({ connectionString: db.url });
      try {
        const bad = [...postgresMigrations, { version: 1, name: "again", sql: () => "SELECT 1" }];
        expect(await codeOf(migrate(pool, newSchema(), bad))).toBe(Code.InvalidArgument);
      } finally {
        await pool.end();
      }
    });
  });

  describe("the LISTEN connection", () => {
    it("recovers after its backend is terminated, tells the watchers when it is lost and when it is back, and B still sees later changes", async () => {
      const schema = newSchema();
      const a = await open({ schema });
      const logger = recordingLogger();
      const b = await open({ schema, logger });
      let calls = 0;
      b.watch(() => calls++);
      const pid = b.listenerPid();
      expect(pid).toBeTypeOf("number");
      const [killed] = await db.query<{ ok: boolean }>("SELECT pg_terminate_backend($1) AS ok", [pid]);
      expect(killed?.ok).toBe(true);
      // A change made while B is not listening reaches B through the call after reconnecting.
      const missed = await a.createTarget(hook("while-down"));
      await waitFor(() => b.listenerPid() !== undefined && b.listenerPid() !== pid, 5000, "B to reconnect");
      await waitFor(() => calls >= 1, 1000, "the call after reconnecting");
      expect(await b.getTarget(missed.id)).toEqual(missed);
      expect(logger.entries.some((e) => e.level === "warn" && e.message.includes("lost the LISTEN connection"))).toBe(true);

      const before = calls;
      const later = await a.createTarget(hook("after-reconnect"));
      await waitFor(() => calls > before, 1000, "B's watcher after reconnecting");
      expect((await b.snapshot()).targets.map((t) => t.id)).toEqual([missed.id, later.id]);
    });

    it("keeps retrying while the database refuses it", async () => {
      const schema = newSchema();
      const a = await open({ schema });
      const b = await open({ schema });
      let calls = 0;
      b.watch(() => calls++);
      // Kill B's listener again and again as soon as it comes back.
      const pids = new Set<number>();
      for (let i = 0; i < 3; i++) {
        const pid = b.listenerPid();
        if (pid === undefined || pids.has(pid)) {
          await waitFor(() => b.listenerPid() !== undefined && !pids.has(b.listenerPid()!), 5000, "B to reconnect");
        }
        pids.add(b.listenerPid()!);
        await db.query("SELECT pg_terminate_backend($1)", [b.listenerPid()]);
      }
      await waitFor(() => b.listenerPid() !== undefined && !pids.has(b.listenerPid()!), 5000, "B to reconnect at last");
      const before = calls;
      await a.createTarget(hook("survivor"));
      await waitFor(() => calls > before, 1000, "B's watcher");
    });
  });

  describe("failures", () => {
    it("write nothing when a write fails midway", async () => {
      const schema = newSchema();
      const a = await open({ schema });
      const b = await open({ schema });
      const s = pg.escapeIdentifier(schema);
      // B hears each of the 4 setup writes; wait for all of them before counting.
      let heard = 0;
      const stopHearing = b.watch(() => heard++);
      const t1 = await a.createTarget(hook("one"));
      const t2 = await a.createTarget(hook("two"));
      const method = { type: "request" as const, method: "/a.B/C" };
      const service = { type: "request" as const, service: "a.B" };
      const e1 = await a.setExecution(method, [{ target: t1.id }, { target: t2.id }]);
      const e2 = await a.setExecution(service, [{ target: t1.id }]);
      await waitFor(() => heard >= 4, 5000, "B to hear the setup writes");
      stopHearing();
      const before = await a.snapshot();
      let calls = 0;
      a.watch(() => calls++);
      b.watch(() => calls++);

      // deleteTarget deletes the target row, then fails while removing it from the executions.
      await db.query(`
        CREATE FUNCTION ${s}.fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
        CREATE TRIGGER fail BEFORE UPDATE OR DELETE ON ${s}.executions FOR EACH ROW EXECUTE FUNCTION ${s}.fail();
      `);
      const failure = await a.deleteTarget(t1.id).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(ConnectError);
      expect((failure as ConnectError).code).toBe(Code.Internal);
      expect((failure as ConnectError).message).toContain("injected failure");
      expect(await a.snapshot()).toEqual(before);
      expect(await b.getExecution(e1!.id)).toEqual(e1);

      // setExecution fails on its last statement: the replaced list stays.
      expect(await codeOf(a.setExecution(method, [{ target: t2.id }]))).toBe(Code.Internal);
      expect(await a.snapshot()).toEqual(before);
      await new Promise((r) => setTimeout(r, 200));
      expect(calls).toBe(0);

      await db.query(`DROP TRIGGER fail ON ${s}.executions`);
      expect(await a.deleteTarget(t1.id)).toBe(true);
      expect(await a.getExecution(e2!.id)).toBeUndefined();
      expect((await a.getExecution(e1!.id))?.targets).toEqual([{ target: t2.id }]);
    });

    it("finds nothing under IDs PostgreSQL cannot store, and rejects such text with InvalidArgument", async () => {
      const a = await open({ schema: newSchema() });
      const t = await a.createTarget(hook("nul"));
      expect(await a.getTarget("x\0")).toBeUndefined();
      expect(await a.getExecution("request\0")).toBeUndefined();
      expect(await a.deleteTarget("x\0")).toBe(false);
      expect(await codeOf(a.updateTarget("x\0", { timeoutMs: 5 }))).toBe(Code.NotFound);
      expect(await codeOf(a.setExecution({ type: "request", all: true }, [{ target: t.id }, { target: "x\0" }]))).toBe(Code.NotFound);
      expect(await codeOf(a.createTarget({ ...hook("nul2"), endpoint: "http://127.0.0.1:9/\0" }))).toBe(Code.InvalidArgument);
      expect(await a.listTargets()).toEqual([t]);
    });

    it("rejects with Unavailable when the database cannot be reached", async () => {
      const error = await createPostgresStore({
        connectionString: "postgres://postgres@127.0.0.1:1/postgres",
        logger: recordingLogger(),
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.Unavailable);
    });

    it("rejects bad options with InvalidArgument", async () => {
      const pool = new pg.Pool({ connectionString: db.url });
      try {
        expect(await codeOf(createPostgresStore({ connectionString: db.url, pool }))).toBe(Code.InvalidArgument);
        expect(await codeOf(createPostgresStore({ pool, schema: "" }))).toBe(Code.InvalidArgument);
        expect(await codeOf(createPostgresStore({ pool, schema: "x".repeat(64) }))).toBe(Code.InvalidArgument);
        expect(await codeOf(createPostgresStore({ pool, schema: "x".repeat(60) }))).toBe(Code.InvalidArgument);
        expect(await codeOf(createPostgresStore({ pool, channel: "c".repeat(64) }))).toBe(Code.InvalidArgument);
      } finally {
        await pool.end();
      }
    });
  });

  describe("close", () => {
    it("stops listening, rejects later calls, and leaves a given pool open", async () => {
      const pool = new pg.Pool({ connectionString: db.url });
      try {
        const store = await createPostgresStore({ pool, schema: newSchema(), logger: recordingLogger() });
        const pid = store.listenerPid();
        await store.close();
        await store.close();
        expect(store.listenerPid()).toBeUndefined();
        expect(await codeOf(store.listTargets())).toBe(Code.Unavailable);
        expect(await codeOf(store.createTarget(hook("late")))).toBe(Code.Unavailable);
        const { rows } = await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1", [pid]);
        expect(rows[0].n).toBe(0);
      } finally {
        await pool.end();
      }
    });

    it("leaves nothing that keeps the process alive, even while reconnecting", async () => {
      const dir = await mkdtemp(join(tmpdir(), "ca-pg-"));
      const storeModule = pathToFileURL(fileURLToPath(new URL("../src/postgres/store.ts", import.meta.url))).href;
      const script = join(dir, "close.mts");
      await writeFile(
        script,
        `
        import { createPostgresStore } from ${JSON.stringify(storeModule)};
        const url = ${JSON.stringify(db.url)};
        const silent = { debug() {}, info() {}, warn() {}, error() {} };
        const a = await createPostgresStore({ connectionString: url, schema: ${JSON.stringify(newSchema())}, logger: silent });
        await a.createTarget({ name: "x", type: "webhook", endpoint: "http://127.0.0.1:9/", timeoutMs: 100 });
        await a.snapshot();
        await a.close();
        const b = await createPostgresStore({ connectionString: url, schema: ${JSON.stringify(newSchema())}, logger: silent });
        await b.pool.query("SELECT pg_terminate_backend($1)", [b.listenerPid()]);
        await new Promise((r) => setTimeout(r, 20));
        await b.close();
        console.log("closed");
        `,
      );
      try {
        // Something left running (a reconnect loop, a pool) would hold the process until the run is killed.
        const output = await new Promise<string>((resolve, reject) => {
          execFile(
            process.execPath,
            ["--import", "tsx", script],
            { cwd: fileURLToPath(new URL("..", import.meta.url)), timeout: 120_000 },
            (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
          );
        });
        expect(output.trim()).toBe("closed");
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }, 150_000);
  });
});
