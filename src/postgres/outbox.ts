import pg from "pg";
import type { ActionEvent } from "../events/action-event.js";
import type { EventPublisher } from "../events/event-publisher.js";
import { acquireClient } from "./connection.js";
import { postgresErrorMapper } from "./errors.js";
import type { EventJob } from "../events/event-queue.js";
import type { PostgresEventQueue } from "./event-queue.js";
import { inTransaction } from "./transaction.js";

/**
 * PostgresOutboxOptions configures createPostgresOutbox.
 */
export interface PostgresOutboxOptions {
  /** The queue the events' deliveries go to; its tables must be in the database of `pool`. */
  readonly queue: PostgresEventQueue;
  /** Finds the deliveries of each event (EventPublisher.jobsFor), for example Actions.publisher. */
  readonly publisher: EventPublisher;
  /** Pool of the transactions, default the queue's pool. */
  readonly pool?: pg.Pool;
}

/**
 * OutboxWrite is what the function of PostgresOutbox.transaction resolves:
 * its result, and the events of the state it changed.
 */
export interface OutboxWrite<T> {
  /** What transaction resolves once the transaction committed. */
  readonly result: T;
  /** The events to deliver, none, one or several; their deliveries commit with the transaction. */
  readonly events: ActionEvent | readonly ActionEvent[];
}

/**
 * OutboxTransactionOptions configures one PostgresOutbox.transaction.
 */
export interface OutboxTransactionOptions {
  /** The statement that opens the transaction, default "BEGIN". */
  readonly begin?: string;
}

/**
 * PostgresOutbox writes state and its events in one transaction (the outbox
 * pattern): an acknowledged write always gets its event deliveries, and a
 * failed one leaves neither.
 */
export interface PostgresOutbox {
  /**
   * transaction checks a client out of the pool, runs `fn` on it inside a
   * transaction, enqueues the deliveries of the events `fn` returns with it
   * (EventPublisher.jobsFor, then PostgresEventQueue.enqueueAndCommit, on the same
   * client), commits, and resolves `fn`'s result. When anything fails, the
   * transaction is rolled back, nothing is enqueued, and the promise rejects:
   * with what `fn` threw, or with a ConnectError for a failure of the
   * database (Code.Unavailable when it cannot be reached or the connection
   * dropped, Code.Aborted for a deadlock, Code.Internal otherwise). A
   * connection that fails meanwhile never ends the process.
   *
   * When the connection drops during COMMIT the outcome is unknown, as with
   * any database write: the write and its deliveries are then either both
   * committed or both not. `fn` may run only once; make it act on the
   * database only.
   */
  transaction<T>(fn: (client: pg.ClientBase) => Promise<OutboxWrite<T>>, options?: OutboxTransactionOptions): Promise<T>;
}

const toConnectError = postgresErrorMapper("postgres outbox", (sqlState) => ["22021", "22P05", "22008", "22007", "23514"].includes(sqlState));

/**
 * createPostgresOutbox returns a PostgresOutbox for a PostgreSQL event queue:
 *
 * ```ts
 * const outbox = createPostgresOutbox({ queue, publisher: actions.publisher });
 * const user = await outbox.transaction(async (client) => {
 *   await client.query("INSERT INTO users (id, name) VALUES ($1, $2)", [id, name]);
 *   return { result: { id, name }, events: { eventType: "user.added", aggregateID: id, ... } };
 * });
 * ```
 *
 * The events' executions are looked up (planner) inside the transaction,
 * which is then held open meanwhile; with a fresh plan, that costs nothing.
 */
export function createPostgresOutbox(options: PostgresOutboxOptions): PostgresOutbox {
  const { queue, publisher } = options;
  const pool = options.pool ?? queue.pool;
  return {
    async transaction(fn, transactionOptions = {}) {
      let client: pg.PoolClient;
      try {
        client = await acquireClient(pool);
      } catch (error) {
        throw toConnectError(error);
      }
      let failed: Error | undefined;
      const onError = (error: Error) => {
        failed = error;
      };
      client.on("error", onError);
      try {
        let jobs: readonly EventJob[] = [];
        return await inTransaction(
          client,
          async (tx) => {
            const write = await fn(tx);
            jobs = await publisher.jobsFor(write.events);
            return write.result;
          },
          {
            begin: transactionOptions.begin,
            // The deliveries and the COMMIT in one round trip: events cost the write no round trip of their own.
            commit: (tx) => queue.enqueueAndCommit(tx, jobs),
            // What the caller's code threw stays as it is; failures of the database become ConnectErrors.
            mapError: (error) => (error instanceof Error && !(error instanceof pg.DatabaseError) && !isDriverError(error) ? error : toConnectError(error)),
          },
        );
      } finally {
        client.removeListener("error", onError);
        client.release(failed);
      }
    },
  };
}

/** isDriverError tells whether an error came from the connection rather than from the caller's code. */
function isDriverError(error: Error): boolean {
  const code = (error as { code?: unknown }).code;
  return (typeof code === "string" && code.startsWith("E")) || /^Connection terminated|not queryable|timeout exceeded when trying to connect/i.test(error.message);
}
