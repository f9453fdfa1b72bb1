import type pg from "pg";
import type { HealthCheck } from "../health/health.js";
import { acquireClient } from "./connection.js";

/**
 * PostgresHealthCheckOptions configures createPostgresHealthCheck.
 */
export interface PostgresHealthCheckOptions {
  /** The pool whose database is checked, for example the one of the store. */
  readonly pool: pg.Pool;
  /** The check's name, default "postgres". */
  readonly name?: string;
}

/**
 * createPostgresHealthCheck returns a HealthCheck (see createHealth) that
 * runs `SELECT 1` on a client of the pool: it fails while the database
 * cannot be reached, and while the pool has no client to give within the
 * check's timeout (an overloaded server should not get more traffic either).
 * A connection that fails meanwhile never ends the process.
 */
export function createPostgresHealthCheck(options: PostgresHealthCheckOptions): HealthCheck {
  const { pool } = options;
  return {
    name: options.name ?? "postgres",
    async check(signal) {
      const client = await acquireClient(pool, signal);
      let failed: Error | undefined;
      const onError = (error: Error) => {
        failed = error;
      };
      client.on("error", onError);
      try {
        await client.query("SELECT 1");
      } catch (error) {
        failed ??= error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        client.removeListener("error", onError);
        client.release(failed);
      }
    },
  };
}
