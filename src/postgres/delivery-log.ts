import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { checkDeliveryQuery, type DeliveryLog, type DeliveryPage, type DeliveryQuery, type DeliveryRecord } from "../store/delivery-log.js";
import { createJsonLogger, type Logger } from "../logger.js";
import { connectionSchema, openPool } from "./connection.js";
import { postgresErrorMapper } from "./errors.js";
import { isStorableText, storableText, toDate, unnestColumns } from "./values.js";
import type { TargetCallRecord } from "../dispatch/target-dispatcher.js";

/**
 * PostgresDeliveryLogOptions configures createPostgresDeliveryLog. Set at
 * most one of `connectionString` and `pool`; with neither, the log connects
 * with the libpq environment variables (PGHOST, PGUSER, PGDATABASE, ...).
 */
export interface PostgresDeliveryLogOptions {
  /**
   * Connection string of the database, for example
   * "postgres://user@host:5432/db". The log creates its own pool from it
   * (with a connection timeout of 10 s) and ends the pool on close.
   */
  readonly connectionString?: string;
  /** Pool to run queries on. The log does not end it on close. */
  readonly pool?: pg.Pool;
  /**
   * Schema of the `delivery_log` table, created if missing (see migrate).
   * Default "connect_actions", the schema of createPostgresStore.
   */
  readonly schema?: string;
  /** Where the log reports failed inserts and dropped records. Default createJsonLogger(). */
  readonly logger?: Logger;
  /** Longest time a record waits in memory before it is inserted, default 200 ms. */
  readonly flushIntervalMs?: number;
  /** Records per INSERT, default 500; a full batch is inserted at once. */
  readonly batchSize?: number;
  /**
   * Records kept in memory while the database cannot take them, default
   * 10 000; beyond that the oldest are dropped, with a warning.
   */
  readonly maxBuffered?: number;
  /** How long records are kept, counted from their insertion, default 7 days. Infinity keeps them. */
  readonly retentionMs?: number;
  /** How many records are kept at most, the latest, default 1 000 000. Infinity keeps them all. */
  readonly maxRecords?: number;
  /** How often each log instance prunes the table, default every 60 000 ms (and once at start). */
  readonly pruneIntervalMs?: number;
}

/**
 * PostgresDeliveryLog is a DeliveryLog kept in PostgreSQL: every log
 * instance (every replica) using the same database and schema writes to,
 * and lists, one table.
 */
export interface PostgresDeliveryLog extends DeliveryLog {
  /** pool is the pool the log queries through, given or created. */
  readonly pool: pg.Pool;
  /** schema is the schema of the `delivery_log` table. */
  readonly schema: string;
  /** buffered returns how many records wait in memory to be inserted. */
  buffered(): number;
  /**
   * prune deletes the records older than retentionMs and those beyond the
   * latest maxRecords now, and resolves how many it deleted. It also runs
   * every pruneIntervalMs on its own.
   */
  prune(): Promise<number>;
}

/** Longest wait between insert attempts while the database fails. */
const maxRetryDelayMs = 10_000;
/** Rows deleted per statement when pruning, so that no statement runs long. */
const pruneBatch = 10_000;
/** Longest delay a Node.js timer takes. */
const maxTimerMs = 2 ** 31 - 1;

/**
 * toConnectError turns an error of the driver into a ConnectError (see
 * postgresErrorMapper); values PostgreSQL cannot take (SQLSTATE class 22,
 * data exception) are Code.InvalidArgument.
 */
const toConnectError = postgresErrorMapper("postgres delivery log", (sqlState) => sqlState.startsWith("22"));

/** A record as inserted: a missing error is NULL. */
type Row = Omit<TargetCallRecord, "error" | "requestExcerpt" | "responseExcerpt" | "test"> & {
  readonly error: string | null;
  readonly requestExcerpt: string | null;
  readonly responseExcerpt: string | null;
  readonly test: boolean | null;
};

interface Buffered {
  /** Position in recording order, from 1. */
  readonly seq: number;
  readonly row: Row;
}

interface FlushWaiter {
  /** The records the flush waits for: seq in [from, to]. */
  readonly from: number;
  readonly to: number;
  /** How many of them were dropped. */
  lost: number;
}

interface LogRow {
  id: string;
  instance_id: string;
  target_id: string;
  target_name: string;
  execution_id: string;
  trigger: string;
  endpoint: string;
  status: number;
  duration_ms: number;
  error: string | null;
  attempt: number;
  async: boolean;
  start_time: Date | string;
  request_excerpt: string | null;
  response_excerpt: string | null;
  test: boolean | null;
}

/**
 * createPostgresDeliveryLog connects to PostgreSQL, brings the schema up to
 * date (see migrate) and resolves a log whose records land in the
 * `delivery_log` table. It rejects with a ConnectError (Code.InvalidArgument
 * for bad options, Code.Unavailable when the database cannot be reached).
 *
 * record() never throws and never waits: records are buffered and inserted
 * in batches (one multi-row INSERT per batch) every flushIntervalMs, or at
 * once when a batch is full. When an insert fails because of the database
 * (unreachable, shutting down, ...), the records stay buffered and are
 * retried with backoff (doubling from flushIntervalMs up to 10 s); when more
 * than maxBuffered wait, the oldest are dropped, with a warning. A batch the
 * database refuses as data (which sanitizing should prevent) is dropped with
 * an error log rather than retried forever. Records are not inserted after
 * the process exits: call close(), or flush(), before.
 *
 * Retention: every pruneIntervalMs, each instance deletes the records
 * inserted more than retentionMs ago and those beyond the latest maxRecords
 * (counted by ID, so at most maxRecords remain), in batches of 10 000 rows.
 *
 * list() applies the filters, order (newest first, by ID, which follows the
 * order of insertion) and paging of the memory log, over the records of all
 * instances; its total is counted in the same snapshot as the page.
 */
export async function createPostgresDeliveryLog(options: PostgresDeliveryLogOptions = {}): Promise<PostgresDeliveryLog> {
  const schema = connectionSchema(options);
  const flushIntervalMs = positive("flushIntervalMs", options.flushIntervalMs ?? 200, false);
  const batchSize = positive("batchSize", options.batchSize ?? 500, true);
  const maxBuffered = positive("maxBuffered", options.maxBuffered ?? 10_000, true);
  const retentionMs = positive("retentionMs", options.retentionMs ?? 7 * 24 * 3600_000, false);
  const maxRecords = positive("maxRecords", options.maxRecords ?? 1_000_000, true);
  const pruneIntervalMs = positive("pruneIntervalMs", options.pruneIntervalMs ?? 60_000, false);
  const logger = options.logger ?? createJsonLogger();
  const db = openPool(options, { component: "postgres delivery log", schema, logger, mapError: toConnectError });
  const pool = db.pool;
  await db.prepare();

  const q = pg.escapeIdentifier(schema);
  let buffer: Buffered[] = [];
  let inFlight: Buffered[] = [];
  let nextSeq = 1;
  const waiters = new Set<FlushWaiter>();
  let cycle: Promise<void> | undefined; // the insert cycle running, if any
  let timer: NodeJS.Timeout | undefined;
  let timerDue = Infinity;
  let failures = 0;
  let droppedInOutage = 0;
  let accepting = true; // record() keeps records
  let released = false; // the pool is gone
  let closing: Promise<void> | undefined;
  let pruning: Promise<number> | undefined;

  const drop = (records: readonly Buffered[]) => {
    if (records.length === 0) return;
    droppedInOutage += records.length;
    const first = records[0]!.seq;
    const last = records.at(-1)!.seq;
    for (const w of waiters) {
      if (last < w.from || first > w.to) continue;
      w.lost += records.filter((r) => r.seq >= w.from && r.seq <= w.to).length;
    }
  };

  /** firstPending returns the seq of the oldest record buffered or being inserted, else the next seq. */
  const firstPending = () => (inFlight[0] ?? buffer[0])?.seq ?? nextSeq;

  const insert = async (batch: readonly Buffered[]) => {
    const columns = unnestColumns(
      batch.map((b) => b.row),
      [
        "instanceId", "targetId", "targetName", "executionId", "trigger", "endpoint", "status", "durationMs", "error", "attempt", "async",
        "startTime", "requestExcerpt", "responseExcerpt", "test",
      ],
    );
    await pool.query(
      `INSERT INTO ${q}.delivery_log
         (instance_id, target_id, target_name, execution_id, trigger, endpoint, status, duration_ms, error, attempt, async,
          start_time, request_excerpt, response_excerpt, test)
       SELECT instance_id, target_id, target_name, execution_id, trigger, endpoint, status, duration_ms, error, attempt, async,
         start_time, request_excerpt, response_excerpt, test
       FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::integer[],
                   $8::double precision[], $9::text[], $10::integer[], $11::boolean[], $12::timestamptz[],
                   $13::text[], $14::text[], $15::boolean[])
         WITH ORDINALITY AS t(instance_id, target_id, target_name, execution_id, trigger, endpoint, status, duration_ms, error,
                              attempt, async, start_time, request_excerpt, response_excerpt, test, n)
       ORDER BY n`,
      columns,
    );
  };

  /**
   * drain inserts the records buffered when it starts, batch after batch
   * (later ones go along while batches have room). It rejects with the
   * error of a failed insert, the batch put back at the front of the buffer.
   */
  const drain = async () => {
    const last = nextSeq - 1;
    while (buffer.length > 0 && buffer[0]!.seq <= last && !released) {
      inFlight = buffer.splice(0, batchSize);
      try {
        await insert(inFlight);
      } catch (error) {
        const batch = inFlight;
        inFlight = [];
        if (!retryable(error)) {
          logger.error("postgres delivery log: the database refused a batch of records, dropped", {
            error,
            schema,
            records: batch.length,
          });
          drop(batch);
          continue;
        }
        buffer = batch.concat(buffer);
        const excess = buffer.length - maxBuffered;
        if (excess > 0) {
          if (droppedInOutage === 0) {
            logger.warn("postgres delivery log: too many records wait for the database, dropping the oldest", {
              schema,
              maxBuffered,
            });
          }
          drop(buffer.splice(0, excess));
        }
        throw error;
      }
      inFlight = [];
      if (failures > 0) {
        logger.info("postgres delivery log: records are inserted again", { schema, failures, dropped: droppedInOutage });
        failures = 0;
        droppedInOutage = 0;
      }
    }
  };

  /** run starts an insert cycle unless one runs, and resolves or rejects with it. */
  const run = (): Promise<void> => {
    if (cycle !== undefined) return cycle;
    clearTimer();
    const current = drain().then(
      () => {
        cycle = undefined;
        if (buffer.length > 0) schedule(buffer.length >= batchSize ? 0 : flushIntervalMs);
      },
      (error: unknown) => {
        cycle = undefined;
        failures++;
        if (failures === 1) {
          logger.warn("postgres delivery log: could not insert records, will retry", { error, schema, buffered: buffer.length });
        }
        schedule(Math.min(maxRetryDelayMs, flushIntervalMs * 2 ** failures));
        throw toConnectError(error);
      },
    );
    cycle = current;
    return current;
  };

  const clearTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    timerDue = Infinity;
  };
  const schedule = (delayMs: number) => {
    if (released || cycle !== undefined) return; // a running cycle schedules what it leaves
    const due = Date.now() + delayMs;
    if (timer !== undefined && timerDue <= due) return;
    clearTimer();
    timerDue = due;
    timer = setTimeout(() => {
      timer = undefined;
      timerDue = Infinity;
      run().catch(() => {}); // logged and rescheduled by run
    }, Math.min(delayMs, maxTimerMs));
    timer.unref();
  };

  const flush = async (): Promise<void> => {
    const waiter: FlushWaiter = { from: firstPending(), to: nextSeq - 1, lost: 0 };
    if (waiter.from > waiter.to) return;
    waiters.add(waiter);
    try {
      while (firstPending() <= waiter.to) {
        if (released) throw new ConnectError("delivery log is closed", Code.Unavailable);
        await run();
      }
    } finally {
      waiters.delete(waiter);
    }
    if (waiter.lost > 0) {
      throw new ConnectError(`${waiter.lost} delivery records were dropped before they could be inserted`, Code.DataLoss);
    }
  };

  const prune = (): Promise<number> => {
    if (released) return Promise.reject(new ConnectError("delivery log is closed", Code.Unavailable));
    // Prunes run one after the other, and each call gets one that starts after it: a prune already
    // under way may have read the table before the records the caller means were inserted.
    const previous = pruning?.catch(() => 0);
    let current: Promise<number> | undefined;
    current = (async () => {
      await previous;
      let deleted = 0;
      const deleteBelow = async (boundary: string) => {
        for (;;) {
          const { rowCount } = await pool.query(
            `DELETE FROM ${q}.delivery_log WHERE id IN (
               SELECT id FROM ${q}.delivery_log WHERE id < $1 ORDER BY id LIMIT ${pruneBatch} FOR UPDATE SKIP LOCKED
             )`,
            [boundary],
          );
          deleted += rowCount ?? 0;
          if ((rowCount ?? 0) < pruneBatch) return;
        }
      };
      try {
        if (Number.isFinite(retentionMs)) {
          // The IDs follow the insertion order: walk from the oldest to the
          // first record young enough, and delete everything before it.
          const { rows } = await pool.query<{ boundary: string | null }>(
            `SELECT coalesce(
               (SELECT id FROM ${q}.delivery_log WHERE recorded_at >= now() - make_interval(secs => $1::double precision / 1000)
                ORDER BY id LIMIT 1),
               (SELECT max(id) + 1 FROM ${q}.delivery_log)
             ) AS boundary
             WHERE EXISTS (
               SELECT 1 FROM (SELECT recorded_at FROM ${q}.delivery_log ORDER BY id LIMIT 1) oldest
               WHERE oldest.recorded_at < now() - make_interval(secs => $1::double precision / 1000)
             )`,
            [retentionMs],
          );
          const boundary = rows[0]?.boundary;
          if (boundary !== undefined && boundary !== null) await deleteBelow(boundary);
        }
        if (Number.isFinite(maxRecords)) {
          const { rows } = await pool.query<{ boundary: string | null }>(
            `SELECT max(id) - $1::bigint + 1 AS boundary FROM ${q}.delivery_log`,
            [maxRecords],
          );
          const boundary = rows[0]?.boundary;
          if (boundary !== undefined && boundary !== null && BigInt(boundary) > 1n) await deleteBelow(boundary);
        }
        return deleted;
      } catch (error) {
        throw toConnectError(error);
      } finally {
        if (pruning === current) pruning = undefined;
      }
    })();
    pruning = current;
    return current;
  };
  const prunePeriodically = () =>
    prune().catch((error: unknown) => {
      if (!released) logger.warn("postgres delivery log: could not prune", { error, schema });
    });
  const pruneTimer = Number.isFinite(pruneIntervalMs) ? setInterval(prunePeriodically, Math.min(pruneIntervalMs, maxTimerMs)) : undefined;
  pruneTimer?.unref();
  void prunePeriodically();

  return {
    pool,
    schema,

    buffered() {
      return buffer.length + inFlight.length;
    },

    record(record: TargetCallRecord) {
      if (!accepting) return;
      try {
        buffer.push({ seq: nextSeq++, row: rowOf(record) });
        if (buffer.length > maxBuffered) {
          if (droppedInOutage === 0) {
            logger.warn("postgres delivery log: too many records wait for the database, dropping the oldest", { schema, maxBuffered });
          }
          drop(buffer.splice(0, buffer.length - maxBuffered));
        }
        // While the database fails, the retry is scheduled already, with backoff.
        if (failures === 0) schedule(buffer.length >= batchSize ? 0 : flushIntervalMs);
      } catch (error) {
        // Never throw at the dispatcher: a record that cannot be kept is lost.
        logger.error("postgres delivery log: could not keep a record", { error, schema });
      }
    },

    async list(query: DeliveryQuery = {}): Promise<DeliveryPage> {
      const { offset, limit } = checkDeliveryQuery(query);
      if (released) throw new ConnectError("delivery log is closed", Code.Unavailable);
      const conditions: string[] = [];
      const values: unknown[] = [];
      const where = (sql: (p: string) => string, value: unknown) => {
        values.push(value);
        conditions.push(sql(`$${values.length}`));
      };
      for (const [key, column] of [["instanceId", "instance_id"], ["targetId", "target_id"], ["executionId", "execution_id"]] as const) {
        const value = query[key];
        if (value === undefined) continue;
        // Text PostgreSQL cannot store is in no record.
        if (!isStorableText(value)) return { total: 0, records: [] };
        where((p) => `${column} = ${p}`, value);
      }
      if (query.failedOnly === true) conditions.push("error IS NOT NULL");
      if (query.succeededOnly === true) conditions.push("error IS NULL");
      if (query.since !== undefined) {
        if (!(query.since instanceof Date) || Number.isNaN(query.since.getTime())) {
          throw new ConnectError("since must be a valid date", Code.InvalidArgument);
        }
        where((p) => `start_time >= ${p}`, query.since);
      }
      const filter = conditions.length === 0 ? "" : `WHERE ${conditions.join(" AND ")}`;
      values.push(offset, limit);
      const [o, l] = [`$${values.length - 1}`, `$${values.length}`];
      const { rows } = await db.query<LogRow & { total: string }>(
        `SELECT c.total, r.* FROM (SELECT count(*) AS total FROM ${q}.delivery_log ${filter}) c
         LEFT JOIN LATERAL (
           SELECT id, instance_id, target_id, target_name, execution_id, trigger, endpoint, status, duration_ms, error, attempt,
             async, start_time, request_excerpt, response_excerpt, test
           FROM ${q}.delivery_log ${filter}
           ORDER BY id DESC OFFSET ${o} LIMIT ${l}
         ) r ON true`,
        values,
      );
      return {
        total: Number(rows[0]?.total ?? 0),
        records: rows.filter((r) => r.id !== null).map(recordFromRow),
      };
    },

    flush,

    prune,

    close() {
      closing ??= (async () => {
        accepting = false;
        if (pruneTimer !== undefined) clearInterval(pruneTimer);
        try {
          await flush();
        } catch (error) {
          logger.warn("postgres delivery log: closed with records not inserted", {
            error,
            schema,
            lost: buffer.length + inFlight.length,
          });
        }
        released = true;
        clearTimer();
        await cycle?.catch(() => {});
        buffer = [];
        await pruning?.catch(() => {});
        await db.end();
      })();
      return closing;
    },
  };
}

/**
 * positive returns `value` if it is a positive number (an integer when
 * `integer`; Infinity passes), or throws Code.InvalidArgument.
 */
function positive(name: string, value: number, integer: boolean): number {
  const ok = typeof value === "number" && value > 0 && (value === Infinity || !integer || Number.isSafeInteger(value));
  if (!ok) throw new ConnectError(`${name} must be a positive ${integer ? "integer" : "number"}, got ${String(value)}`, Code.InvalidArgument);
  return value;
}

/** text returns a string PostgreSQL can store (see storableText); null and undefined become "". */
function text(value: unknown): string {
  return storableText(value ?? "");
}

/** int32 returns an integer that fits PostgreSQL's integer, 0 for anything else. */
function int32(value: unknown): number {
  const n = Math.trunc(Number(value));
  return Number.isFinite(n) && Math.abs(n) <= 2 ** 31 - 1 ? n : 0;
}

/** rowOf copies a record into what is stored, every field made storable. */
function rowOf(r: TargetCallRecord): Row {
  const duration = Number(r.durationMs);
  const start = r.startTime instanceof Date && !Number.isNaN(r.startTime.getTime()) ? new Date(r.startTime.getTime()) : new Date();
  return {
    instanceId: text(r.instanceId ?? ""),
    targetId: text(r.targetId),
    targetName: text(r.targetName),
    executionId: text(r.executionId),
    trigger: text(r.trigger),
    endpoint: text(r.endpoint),
    status: int32(r.status),
    durationMs: Number.isFinite(duration) ? duration : 0,
    error: r.error === undefined || r.error === null ? null : text(r.error),
    attempt: int32(r.attempt),
    async: r.async === true,
    startTime: start,
    requestExcerpt: typeof r.requestExcerpt === "string" ? storableText(r.requestExcerpt) : null,
    responseExcerpt: typeof r.responseExcerpt === "string" ? storableText(r.responseExcerpt) : null,
    test: typeof r.test === "boolean" ? r.test : null,
  };
}

/** recordFromRow returns the record of a row; the excerpts and the test mark only when the row has them, as recorded. */
function recordFromRow(row: LogRow): DeliveryRecord {
  const optional: { requestExcerpt?: string; responseExcerpt?: string; test?: boolean } = {};
  if (row.request_excerpt !== null) optional.requestExcerpt = row.request_excerpt;
  if (row.response_excerpt !== null) optional.responseExcerpt = row.response_excerpt;
  if (row.test !== null) optional.test = row.test;
  return Object.freeze({
    ...optional,
    instanceId: row.instance_id,
    targetId: row.target_id,
    targetName: row.target_name,
    executionId: row.execution_id,
    trigger: row.trigger,
    endpoint: row.endpoint,
    status: Number(row.status),
    durationMs: Number(row.duration_ms),
    error: row.error ?? undefined,
    attempt: Number(row.attempt),
    async: row.async,
    startTime: toDate(row.start_time),
    id: String(row.id),
  });
}

/**
 * retryable tells whether an insert that failed with `error` may succeed
 * later: anything but the database refusing the data itself (SQLSTATE
 * classes 22, data exception, and 23, integrity constraint violation).
 */
function retryable(error: unknown): boolean {
  if (error instanceof pg.DatabaseError) {
    const sqlState = error.code ?? "";
    return !sqlState.startsWith("22") && !sqlState.startsWith("23");
  }
  return true;
}
