// Issue 14: a PostgreSQL connection that fails never ends the process, waiting writes end with their
// component, and concurrent renames answer as some serial order would.
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { openPool } from "../src/postgres/connection.js";
import { postgresErrorMapper } from "../src/postgres/errors.js";
import { createPostgresStore } from "../src/postgres/store.js";
import type { TargetInput } from "../src/target.js";
import { closedAfterEach, newSchemaName, useTestDatabase } from "./helpers/postgres.js";
import { recordingLogger } from "./helpers/recording-logger.js";
import { codeOf, waitFor } from "./helpers/wait.js";

const db = useTestDatabase();
const hook = (name: string): TargetInput => ({ name, type: "webhook", endpoint: `http://127.0.0.1:9/${name}`, timeoutMs: 1000 });
const mapError = postgresErrorMapper("test", () => false);

/** deferred returns a promise and the function that resolves it. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("checked-out clients", () => {
  it("turn a backend terminated inside a transaction into Unavailable, without an unhandled 'error' event", async () => {
    const logger = recordingLogger();
    const db1 = openPool({ connectionString: db.url }, { component: "test", schema: "public", logger, mapError });
    try {
      const gotPid = deferred();
      let pid = 0;
      const died = deferred();
      const pending = db1.transaction(async (client) => {
        pid = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
        gotPid.resolve();
        // Idle in the transaction, with no query in flight, while the backend is terminated:
        // pg emits 'error' on the client, which ends the process unless something listens.
        await died.promise;
        await client.query("SELECT 1");
      });
      await gotPid.promise;
      const [row] = await db.query<{ ok: boolean }>("SELECT pg_terminate_backend($1) AS ok", [pid]);
      expect(row?.ok).toBe(true);
      await waitFor(
        async () => (await db.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1", [pid])).length === 0,
        10_000,
        "the backend to be gone",
      );
      // Let the client read the termination before it queries again.
      await new Promise((r) => setTimeout(r, 50));
      died.resolve();
      expect(await codeOf(pending)).toBe(Code.Unavailable);
      // The pool dropped the broken client: the next transaction gets a working one.
      expect(await db1.transaction(async (client) => (await client.query("SELECT 1 AS one")).rows[0].one)).toBe(1);
    } finally {
      await db1.end();
    }
  });

  it("guard a given pool without an error listener, and leave one with a listener alone", async () => {
    const bare = new pg.Pool({ connectionString: db.url, max: 1 });
    const own = new pg.Pool({ connectionString: db.url, max: 1 });
    const seen: Error[] = [];
    own.on("error", (e) => seen.push(e));
    const logger = recordingLogger();
    const a = openPool({ pool: bare }, { component: "a", schema: "public", logger, mapError });
    const b = openPool({ pool: own }, { component: "b", schema: "public", logger, mapError });
    try {
      expect(bare.listenerCount("error")).toBe(1);
      expect(own.listenerCount("error")).toBe(1);
      // An idle client of each pool loses its backend.
      const pidA = (await a.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      const pidB = (await b.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
      await db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1)", [[pidA, pidB]]);
      await waitFor(() => seen.length === 1, 10_000, "the own listener to hear of the failure");
      await waitFor(
        () => logger.entries.some((e) => e.level === "warn" && e.message.includes("add pool.on('error'")),
        10_000,
        "the guard to log the failure",
      );
      expect((await a.query("SELECT 1 AS one")).rows[0]?.one).toBe(1);
      expect((await b.query("SELECT 1 AS one")).rows[0]?.one).toBe(1);
    } finally {
      await a.end();
      await b.end();
      await bare.end();
      await own.end();
    }
  });
});

describe("closing a store", () => {
  it("fails the writes waiting for a connection at once with Unavailable", async () => {
    // One connection, no connection timeout: a waiting write would wait for ever.
    const pool = new pg.Pool({ connectionString: db.url, max: 1, connectionTimeoutMillis: 0 });
    pool.on("error", () => {});
    const store = await createPostgresStore({ pool, schema: newSchemaName("c"), logger: recordingLogger() });
    const held = await pool.connect();
    try {
      const waiting = [store.createTarget(hook("w1")), store.listTargets(), store.deleteTarget("x")];
      let settled = 0;
      for (const w of waiting) void w.catch(() => {}).finally(() => settled++);
      await new Promise((r) => setTimeout(r, 50));
      expect(settled).toBe(0);
      await store.close();
      // They fail while the only connection is still held, so not because one became free.
      const codes = await Promise.all(waiting.map((w) => codeOf(w)));
      expect(codes).toEqual([Code.Unavailable, Code.Unavailable, Code.Unavailable]);
      const error = await waiting[0]!.catch((e: unknown) => e);
      expect((error as ConnectError).rawMessage).toBe("postgres store is closed");
    } finally {
      held.release();
      await pool.end();
    }
  });
});

describe("concurrent renames", () => {
  const open = closedAfterEach(createPostgresStore);

  it("that swap two names both answer AlreadyExists, never Aborted", async () => {
    const store = await open({ connectionString: db.url, schema: newSchemaName("r"), logger: recordingLogger() });
    const a = await store.createTarget(hook("a"));
    const b = await store.createTarget(hook("b"));
    const answers = new Map<string, number>();
    for (let i = 0; i < 100; i++) {
      const results = await Promise.all([
        codeOf(store.updateTarget(a.id, { name: "b" })),
        codeOf(store.updateTarget(b.id, { name: "a" })),
      ]);
      for (const r of results) answers.set(String(r), (answers.get(String(r)) ?? 0) + 1);
    }
    expect(Object.fromEntries(answers)).toEqual({ [String(Code.AlreadyExists)]: 200 });
    expect((await store.getTarget(a.id))?.name).toBe("a");
    expect((await store.getTarget(b.id))?.name).toBe("b");
  });
});
