import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import type { Logger } from "../logger.js";
import type { PostgresErrorMapper } from "./errors.js";
import { migrate, validateSchemaName } from "./migrations.js";
import { inTransaction } from "./transaction.js";

/**
 * connectTimeoutMs is the connection timeout, 10 000 ms, of the pools that
 * openPool creates and of LISTEN connections whose pool sets none.
 */
export const connectTimeoutMs = 10_000;

/**
 * PostgresConnectionOptions are the options every PostgreSQL-backed component
 * takes to reach its database: at most one of `connectionString` and `pool`
 * (with neither, the libpq environment variables PGHOST, PGUSER, PGDATABASE,
 * ... apply), and the schema of its tables.
 */
export interface PostgresConnectionOptions {
  /** Connection string of the database; no default. */
  readonly connectionString?: string;
  /** Pool to run queries on, left open on close; no default. */
  readonly pool?: pg.Pool;
  /** Schema of the tables. Default "connect_actions". */
  readonly schema?: string;
}

/**
 * connectionSchema checks the connection options and returns the schema:
 * `options.schema`, default "connect_actions". It throws a ConnectError with
 * Code.InvalidArgument ("set connectionString or pool, not both") when both
 * `connectionString` and `pool` are set, or when the schema is no usable name
 * (see validateSchemaName).
 */
export function connectionSchema(options: PostgresConnectionOptions): string {
  if (options.connectionString !== undefined && options.pool !== undefined) {
    throw new ConnectError("set connectionString or pool, not both", Code.InvalidArgument);
  }
  const schema = options.schema ?? "connect_actions";
  validateSchemaName(schema);
  return schema;
}

/**
 * channelName returns the LISTEN/NOTIFY channel `channel`, default `fallback`
 * (there is no other default), once checked: it throws a ConnectError with
 * Code.InvalidArgument unless the name has 1 to 63 bytes and no NUL; when the
 * fallback is at fault, the message says to set the channel option.
 */
export function channelName(channel: string | undefined, fallback: string): string {
  const name = channel ?? fallback;
  if (name === "" || Buffer.byteLength(name) > 63 || name.includes("\0")) {
    throw new ConnectError(
      `invalid channel "${name}": must be 1 to 63 bytes${channel === undefined ? ", set the channel option" : ""}`,
      Code.InvalidArgument,
    );
  }
  return name;
}

/**
 * PostgresPool is the pool of a component, given or created (see openPool),
 * with the component's error mapping.
 */
export interface PostgresPool {
  /** pool is the pool, given or created. */
  readonly pool: pg.Pool;
  /** owned is true when openPool created the pool; end() ends only such a pool. */
  readonly owned: boolean;
  /**
   * query runs one statement on the pool with `values` (default none) as its
   * parameters; errors are turned into ConnectErrors by the component's mapper.
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /**
   * transaction runs `fn` in a transaction on a client of the pool, opened
   * with `begin` (default "BEGIN") and ended as `end` says (default: always
   * COMMIT); on failure it rolls back, and errors are turned into
   * ConnectErrors by the component's mapper. See inTransaction.
   */
  transaction<T>(fn: (client: pg.ClientBase) => Promise<T>, begin?: string, end?: (value: T) => "COMMIT" | "ROLLBACK"): Promise<T>;
  /**
   * prepare brings the schema up to date (see migrate), then runs `then`
   * (default: nothing more) and resolves what it resolves. When either
   * fails, it ends the pool if owned and rejects with the failure turned into
   * a ConnectError by the component's mapper.
   */
  prepare<T = void>(then?: () => Promise<T>): Promise<T>;
  /** end ends the pool if it is owned; a given pool is left open. */
  end(): Promise<void>;
}

/**
 * PoolContext is what openPool needs to know of the component it opens a
 * pool for. Every field is required.
 */
export interface PoolContext {
  /** Component name that starts log messages, for example "postgres store". */
  readonly component: string;
  /** The component's schema, logged with idle connection failures. */
  readonly schema: string;
  /** Where a created pool logs idle connection failures. */
  readonly logger: Logger;
  /** How errors of queries and transactions become ConnectErrors. */
  readonly mapError: PostgresErrorMapper;
}

/**
 * openPool returns `options.pool`, or else a pool it creates (and owns) from
 * `options.connectionString`, or from the libpq environment variables when
 * that is unset, with a connection timeout of connectTimeoutMs (10 s). A
 * created pool logs a failing idle client with a warning,
 * "<component>: idle connection failed", rather than crash the process.
 * Call connectionSchema first: openPool does not check the options.
 */
export function openPool(options: PostgresConnectionOptions, context: PoolContext): PostgresPool {
  const { component, schema, logger, mapError } = context;
  const owned = options.pool === undefined;
  const pool =
    options.pool ??
    new pg.Pool({
      ...(options.connectionString !== undefined ? { connectionString: options.connectionString } : {}),
      connectionTimeoutMillis: connectTimeoutMs,
    });
  if (owned) {
    // An idle client losing its connection must not crash the process.
    pool.on("error", (error) => logger.warn(`${component}: idle connection failed`, { error, schema }));
  }
  const endPool = async () => {
    if (owned) await pool.end();
  };
  return {
    pool,
    owned,
    async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
      try {
        return await pool.query<R>(text, values);
      } catch (error) {
        throw mapError(error);
      }
    },
    transaction: (fn, begin, end) => inTransaction(pool, fn, { begin, end, mapError }),
    async prepare<T>(then?: () => Promise<T>) {
      try {
        await migrate(pool, schema);
        return (await then?.()) as T;
      } catch (error) {
        await endPool().catch(() => {});
        throw mapError(error);
      }
    },
    end: endPool,
  };
}
