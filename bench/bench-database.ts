// A throwaway database for the benches that write to PostgreSQL.
import { randomBytes } from "node:crypto";
import pg from "pg";

/** A throwaway database next to `url`'s, dropped by drop(). */
export async function createBenchDatabase(url: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `connect_actions_bench_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}
