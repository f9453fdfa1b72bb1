import { randomBytes } from "node:crypto";
import pg from "pg";

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
