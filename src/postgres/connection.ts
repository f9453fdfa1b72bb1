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
   * query runs one statement on a client of the pool with `values` (default
   * none) as its parameters; errors are turned into ConnectErrors by the
   * component's mapper.
   */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /**
   * transaction runs `fn` in a transaction on a client of the pool, opened
   * with `begin` (default "BEGIN") and ended as `end` says (default: always
   * COMMIT); on failure it rolls back, and errors are turned into
   * ConnectErrors by the component's mapper. See inTransaction. A
   * transaction that PostgreSQL aborts as a deadlock victim (SQLSTATE 40P01)
   * or for a serialization failure (40001) is run again, up to 4 times in all,
   * so `fn` must only act on the database.
   */
  transaction<T>(fn: (client: pg.ClientBase) => Promise<T>, begin?: string, end?: (value: T) => "COMMIT" | "ROLLBACK"): Promise<T>;
  /**
   * prepare brings the schema up to date (see migrate), then runs `then`
   * (default: nothing more) and resolves what it resolves. When either
   * fails, it ends the pool if owned and rejects with the failure turned into
   * a ConnectError by the component's mapper.
   */
  prepare<T = void>(then?: () => Promise<T>): Promise<T>;
  /**
   * end rejects the queries and transactions still waiting for a client of
   * the pool at once with Code.Unavailable ("<component> is closed"), and
   * then ends the pool if it is owned; a given pool is left open. Those
   * holding a client finish first.
   */
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

/** How often a transaction runs in all when PostgreSQL aborts it as a deadlock victim or for a serialization failure. */
const transactionAttempts = 4;

/**
 * openPool returns `options.pool`, or else a pool it creates (and owns) from
 * `options.connectionString`, or from the libpq environment variables when
 * that is unset, with a connection timeout of connectTimeoutMs (10 s).
 *
 * A connection that fails never ends the process: a created pool logs a
 * failing idle client with a warning, "<component>: idle connection failed"
 * (see guardPool for a given pool), and a client checked out for a query or
 * a transaction has an error listener for as long as it is checked out.
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
  } else {
    guardPool(pool, logger);
  }
  const closing = new AbortController();
  const closedError = () => new ConnectError(`${component} is closed`, Code.Unavailable);
  const endPool = async () => {
    if (owned) await pool.end();
  };

  /**
   * withClient checks a client out of the pool, runs `fn` on it and releases
   * it, as broken when its connection failed meanwhile (it listens for that,
   * so that a terminated backend is an error of `fn`, never an unhandled
   * 'error' event). Waiting for a client ends at once when the component closes.
   */
  const withClient = async <T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> => {
    let client: pg.PoolClient;
    try {
      client = await acquireClient(pool, closing.signal);
    } catch (error) {
      throw closing.signal.aborted ? closedError() : mapError(error);
    }
    let failed: Error | undefined;
    const onError = (error: Error) => {
      failed = error;
    };
    client.on("error", onError);
    try {
      return await fn(client);
    } finally {
      client.removeListener("error", onError);
      client.release(failed);
    }
  };

  return {
    pool,
    owned,
    async query<R extends pg.QueryResultRow>(text: string, values: unknown[] = []) {
      return withClient(async (client) => {
        try {
          return await client.query<R>(text, values);
        } catch (error) {
          throw mapError(error);
        }
      });
    },
    async transaction(fn, begin, end) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await withClient((client) => inTransaction(client, fn, { begin, end, mapError }));
        } catch (error) {
          if (attempt >= transactionAttempts || !isRetryableAbort(error) || closing.signal.aborted) throw error;
        }
      }
    },
    async prepare<T>(then?: () => Promise<T>) {
      try {
        await migrate(pool, schema);
        return (await then?.()) as T;
      } catch (error) {
        await endPool().catch(() => {});
        throw mapError(error);
      }
    },
    async end() {
      closing.abort();
      await endPool();
    },
  };
}

/**
 * isRetryableAbort tells whether a transaction failed as a deadlock victim
 * (SQLSTATE 40P01) or for a serialization failure (40001): running it again
 * is then the right answer.
 */
function isRetryableAbort(error: unknown): boolean {
  const cause = error instanceof ConnectError ? error.cause : error;
  return cause instanceof pg.DatabaseError && (cause.code === "40P01" || cause.code === "40001");
}

/**
 * acquireClient checks a client out of `pool`, or rejects with the reason of
 * `signal` as soon as it aborts (a client that arrives later is released at
 * once). pg's own wait ends only with the pool's connection timeout.
 */
export function acquireClient(pool: pg.Pool, signal?: AbortSignal): Promise<pg.PoolClient> {
  if (signal === undefined) return pool.connect();
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    let settled = false;
    const onAbort = () => {
      if (settled) return;
      settled = true;
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    pool.connect().then(
      (client) => {
        signal.removeEventListener("abort", onAbort);
        if (settled) {
          client.release();
          return;
        }
        settled = true;
        resolve(client);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        if (settled) return;
        settled = true;
        reject(error);
      },
    );
  });
}

/** Pools already given an error listener by guardPool. */
const guarded = new WeakSet<pg.Pool>();

/**
 * guardPool makes sure that a failing idle client of a pool given by the
 * application cannot end the process: pg emits an 'error' event on the pool
 * then, which ends the process unless something listens. When the pool has
 * no 'error' listener yet, guardPool adds one that logs a warning
 * ("postgres: idle connection of a given pool failed; add pool.on('error', ...)
 * to handle it yourself"); a pool that has one is left alone. Applications
 * should listen themselves: `pool.on("error", (error) => log(error))`.
 */
export function guardPool(pool: pg.Pool, logger: Logger): void {
  if (guarded.has(pool) || pool.listenerCount("error") > 0) return;
  guarded.add(pool);
  pool.on("error", (error) => {
    if (pool.listenerCount("error") > 1) return; // the application listens too
    logger.warn("postgres: idle connection of a given pool failed; add pool.on('error', ...) to handle it yourself", { error });
  });
}
