import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, afterEach, beforeAll } from "vitest";

/**
 * adminUrl is the connection string of a database the tests may create other
 * databases from: DATABASE_URL, default "postgres://postgres@127.0.0.1:5432/postgres".
 */
export const adminUrl = process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/**
 * TestDatabase is a throwaway database.
 */
export interface TestDatabase {
  /** name is the database's name, "ca_test_" and random hex digits. */
  readonly name: string;
  /** url is the connection string of the database. */
  readonly url: string;
  /** query runs one statement in the database on a short-lived connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  /** drop terminates the database's connections and drops it. */
  drop(): Promise<void>;
}

/**
 * createTestDatabase creates a new, empty database next to the one of adminUrl.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `ca_test_${randomBytes(6).toString("hex")}`;
  await withAdmin((c) => c.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        return (await client.query<R>(text, values)).rows;
      } finally {
        await client.end();
      }
    },
    async drop() {
      await withAdmin(async (c) => {
        await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]);
        await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      });
    },
  };
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * useTestDatabase registers hooks that create a throwaway database (see
 * createTestDatabase) before the tests of the enclosing file or describe
 * block, and drop it after them; it returns the database, usable from the
 * first test on (or from a later beforeAll). Call it before registering
 * afterAll hooks that still need the database: after-hooks run in reverse
 * order.
 */
export function useTestDatabase(): TestDatabase {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });
  const current = (): TestDatabase => {
    if (db === undefined) throw new Error("the test database is created in beforeAll: use it from a test or hook");
    return db;
  };
  return {
    get name() {
      return current().name;
    },
    get url() {
      return current().url;
    },
    query: (text, values) => current().query(text, values),
    drop: () => current().drop(),
  };
}

/**
 * newSchemaName returns a schema name not used before: `prefix`, "_" and ten
 * random hex digits, for example "s_0a1b2c3d4e".
 */
export function newSchemaName(prefix: string): string {
  return `${prefix}_${randomBytes(5).toString("hex")}`;
}

/**
 * SchemaFixture is something opened on a fresh schema, and the cleanup that
 * closes it and drops the schema.
 */
export interface SchemaFixture<T> {
  readonly opened: T;
  cleanup(): Promise<void>;
}

/**
 * openInFreshSchema opens `open(schema)` on a new schema named after
 * `prefix` (see newSchemaName); the cleanup closes it and then drops the
 * schema with everything in it. For the factories of the contract suites.
 */
export async function openInFreshSchema<T extends { close(): Promise<void> }>(
  db: TestDatabase,
  prefix: string,
  open: (schema: string) => Promise<T>,
): Promise<SchemaFixture<T>> {
  const schema = newSchemaName(prefix);
  const opened = await open(schema);
  return {
    opened,
    async cleanup() {
      await opened.close();
      await db.query(`DROP SCHEMA ${pg.escapeIdentifier(schema)} CASCADE`);
    },
  };
}

/**
 * closedAfterEach wraps `open` so that everything it opens in a test is
 * closed after that test (by an afterEach hook it registers in the enclosing
 * describe block), all at once.
 */
export function closedAfterEach<A extends unknown[], T extends { close(): Promise<void> }>(
  open: (...args: A) => Promise<T>,
): (...args: A) => Promise<T> {
  const opened: T[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((o) => o.close()));
  });
  return async (...args) => {
    const o = await open(...args);
    opened.push(o);
    return o;
  };
}
