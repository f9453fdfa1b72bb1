import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import type { DeadJob, EventJob, EventQueue, ListDeadOptions, QueuedJob } from "../events/event-queue.js";
import { createJsonLogger, type Logger } from "../logger.js";
import { channelName, connectionSchema, openPool } from "./connection.js";
import { postgresErrorMapper } from "./errors.js";
import { createPostgresListener } from "./listener.js";
import { isStorableText, storableText, toDate, unnestColumns } from "./values.js";
import { createWatchers } from "./watchers.js";

/**
 * PostgresEventQueueOptions configures createPostgresEventQueue. Set at most
 * one of `connectionString` and `pool`; with neither, the queue connects with
 * the libpq environment variables (PGHOST, PGUSER, PGDATABASE, ...).
 */
export interface PostgresEventQueueOptions {
  /**
   * Connection string of the database, for example
   * "postgres://user@host:5432/db". The queue creates its own pool from it
   * (with a connection timeout of 10 s) and ends the pool on close.
   */
  readonly connectionString?: string;
  /**
   * Pool to run queries on. The queue does not end it on close. The LISTEN
   * connection is a separate client created with the pool's options.
   */
  readonly pool?: pg.Pool;
  /**
   * Schema of the queue's tables, created if missing (see migrate). Default
   * "connect_actions", the schema of createPostgresStore.
   */
  readonly schema?: string;
  /**
   * LISTEN/NOTIFY channel through which enqueues wake the queue instances
   * sharing the database. Default: the schema followed by "_jobs", for
   * example "connect_actions_jobs".
   */
  readonly channel?: string;
  /** Where the queue logs lost connections and reconnects. Default createJsonLogger(). */
  readonly logger?: Logger;
  /**
   * How many dead (given-up) jobs are kept, default 10 000: each give-up
   * deletes the dead jobs that are more than this many give-ups old, across
   * all instances. 0 keeps none.
   */
  readonly maxDead?: number;
}

/**
 * PostgresEventQueue is an EventQueue kept in PostgreSQL: jobs survive
 * restarts and crashes, and every queue instance (every replica) using the
 * same database and schema shares them. Leases and due times follow the
 * database's clock, so replicas with skewed clocks agree.
 */
export interface PostgresEventQueue extends EventQueue {
  /** pool is the pool the queue queries through, given or created. */
  readonly pool: pg.Pool;
  /** schema is the schema of the queue's tables. */
  readonly schema: string;
  /** channel is the LISTEN/NOTIFY channel of enqueue notifications. */
  readonly channel: string;
  /**
   * enqueueWith adds jobs, all or none, in order, through `client`: inside
   * the caller's transaction when one is open, so that the jobs are
   * committed, or rolled back, together with the caller's own writes (the
   * outbox pattern). Watchers of every instance, this one included, hear of
   * the jobs through NOTIFY once the transaction commits. The client is
   * neither released nor ended. Rejects like enqueue; a failure aborts the
   * caller's transaction, as any failed statement does.
   *
   * Each new job locks its lane's row (see the `event_lanes` table) until
   * the transaction ends, which holds up the settling of that lane's head
   * meanwhile: keep such transactions short, and pass all the jobs of a
   * transaction in one call (lanes are locked in a fixed order within a call;
   * transactions locking lanes in different orders can deadlock, and one of
   * them is then rejected with Code.Aborted).
   */
  enqueueWith(client: pg.ClientBase, jobs: readonly EventJob[]): Promise<void>;
  /**
   * listenerPid returns the backend process ID of the LISTEN connection
   * (see pg_stat_activity), or undefined while it is reconnecting or after
   * close. For diagnostics.
   */
  listenerPid(): number | undefined;
}

/** Largest timeoutMs of a job: an integer column. */
const maxTimeoutMs = 2 ** 31 - 1;

/**
 * toConnectError turns an error of the driver into a ConnectError (see
 * postgresErrorMapper); values PostgreSQL cannot store (NUL characters,
 * out-of-range dates, a failed check) are Code.InvalidArgument.
 */
const toConnectError = postgresErrorMapper("postgres event queue", (sqlState) =>
  ["22021", "22P05", "22008", "22007", "23514"].includes(sqlState),
);

/** The columns event_jobs and event_dead_jobs share. */
interface JobColumns {
  id: string;
  instance_id: string;
  target_id: string;
  ordering_key: string;
  execution_id: string;
  event_type: string;
  body: string;
  created_at: Date | string;
  timeout_ms: number;
  enqueued_at: Date | string;
  attempts: number;
}

interface JobRow extends JobColumns {
  lease: string;
  last_error: string;
}

interface DeadRow extends JobColumns {
  error: string;
  died_at: Date | string;
}

/**
 * createPostgresEventQueue connects to PostgreSQL, brings the schema up to
 * date (see migrate) and starts listening for enqueues made by other queue
 * instances. It resolves once the queue is ready, and rejects with a
 * ConnectError (Code.InvalidArgument for bad options, Code.Unavailable when
 * the database cannot be reached) otherwise.
 *
 * The jobs of one (target, ordering key), a lane, are settled one at a time,
 * in order: the lane's row in `event_lanes` names its head job, the only one
 * that can be claimed. A claim locks the due lanes it takes with FOR UPDATE
 * SKIP LOCKED, so that concurrent claims, from any instance, never take the
 * same lane; settling a head (complete, giveUp) locks its lane and, in the
 * same transaction, makes the lane's next job its head, or deletes the lane;
 * an enqueue locks (or creates) the lanes of its jobs in the statement that
 * inserts them, so a settle either sees the new jobs or leaves the lane for
 * the enqueue to create again. Claims read the lanes through two partial
 * indexes (ready heads by ID, waiting heads by due time), so their cost does
 * not grow with the number of jobs queued behind the heads.
 *
 * Within a lane, jobs are settled in the order of their IDs, which is the
 * order of the enqueues that committed one after the other; enqueues that
 * overlap in time have no order between them. Across lanes, a claim takes the
 * due heads oldest first, as the memory queue does, except that of more than
 * `limit` lanes whose retry time or lease ran out, those due longest go
 * first. The lease of a claim lasts the job's timeoutMs plus graceMs from the
 * database's now(); retry stores runAt as given. Given-up jobs are kept in
 * `event_dead_jobs` (see maxDead).
 *
 * Operations reject with a ConnectError: Code.Unavailable when the database
 * cannot be reached or the queue is closed, Code.InvalidArgument for a job
 * PostgreSQL cannot store (NUL characters, a bad date or timeout),
 * Code.Aborted for a deadlock, Code.Internal otherwise.
 */
export async function createPostgresEventQueue(options: PostgresEventQueueOptions = {}): Promise<PostgresEventQueue> {
  const schema = connectionSchema(options);
  const channel = channelName(options.channel, `${schema}_jobs`);
  const maxDead = options.maxDead ?? 10_000;
  if (!Number.isSafeInteger(maxDead) || maxDead < 0) {
    throw new ConnectError(`maxDead must be a non-negative integer, got ${String(maxDead)}`, Code.InvalidArgument);
  }
  const logger = options.logger ?? createJsonLogger();
  const db = openPool(options, { component: "postgres event queue", schema, logger, mapError: toConnectError });
  const pool = db.pool;

  const q = pg.escapeIdentifier(schema);
  const source = randomUUID();
  const ownPayload = JSON.stringify({ source });
  const watchers = createWatchers();
  const wakeWatchers = watchers.notify;
  let closed = false;
  let closing: Promise<void> | undefined;

  const open = () => {
    if (closed) throw new ConnectError("event queue is closed", Code.Unavailable);
  };
  const run = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> => {
    open();
    return db.query<R>(text, values);
  };

  /**
   * settle runs `statement` on the lane of `job` while holding the lane's
   * row lock, in one transaction, and resolves whether it changed a row.
   * Locking the lane first, in its own statement, matters twice: every
   * writer takes a lane's lock before its head job's (no deadlock with
   * claims), and the statement's snapshot, taken after the lock was
   * granted, sees every job enqueued into the lane by transactions that
   * held the lock before.
   */
  const settle = async (job: QueuedJob, statement: string, values: unknown[]): Promise<boolean> => {
    open();
    if (!isLeaseOf(job)) return false;
    return db.transaction(
      async (client) => {
        const lane = await client.query(
          `SELECT head_id FROM ${q}.event_lanes WHERE target_id = $1 AND ordering_key = $2 FOR UPDATE`,
          [job.targetId, job.orderingKey],
        );
        if (lane.rows[0]?.head_id !== job.id) return false;
        return ((await client.query(statement, values)).rowCount ?? 0) > 0;
      },
      "BEGIN",
      (changed) => (changed ? "COMMIT" : "ROLLBACK"),
    );
  };

  // The statement that makes the head's successor the lane's head, or
  // deletes the lane when it has no other job. `done` is the deleted head.
  const advanceLane = `
    next AS (
      SELECT j.id FROM ${q}.event_jobs j, done
      WHERE j.target_id = done.target_id AND j.ordering_key = done.ordering_key AND j.id <> done.id
      ORDER BY j.id
      LIMIT 1
    ),
    promoted AS (
      UPDATE ${q}.event_lanes l SET head_id = next.id, available_at = NULL
      FROM next, done
      WHERE l.target_id = done.target_id AND l.ordering_key = done.ordering_key
    ),
    emptied AS (
      DELETE FROM ${q}.event_lanes l USING done
      WHERE l.target_id = done.target_id AND l.ordering_key = done.ordering_key AND NOT EXISTS (SELECT 1 FROM next)
    )`;
  const leaseValid = "id = $1 AND lease = $2 AND lease_until > statement_timestamp()";
  const jobColumns =
    "id, instance_id, target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms, enqueued_at, attempts";

  /**
   * insertJobs inserts the jobs and locks or creates their lanes, in one
   * statement: atomic on its own, or part of the caller's transaction. The
   * lanes are locked in a fixed order, so that concurrent enqueues wait for
   * each other rather than deadlock. The NOTIFY is sent on commit.
   */
  const insertJobs = async (client: pg.Pool | pg.ClientBase, jobs: readonly EventJob[], payload: string) => {
    const columns = jobColumnsOf(jobs);
    await client.query(
      `WITH input AS (
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::integer[],
                              $8::text[])
           WITH ORDINALITY AS t(target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms, instance_id, n)
       ),
       inserted AS (
         INSERT INTO ${q}.event_jobs (target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms, instance_id)
         SELECT target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms, instance_id FROM input ORDER BY n
         RETURNING id, target_id, ordering_key
       ),
       notified AS (SELECT pg_notify($9, $10) AS done)
       INSERT INTO ${q}.event_lanes (target_id, ordering_key, head_id)
       SELECT i.target_id, i.ordering_key, min(i.id) FROM inserted i CROSS JOIN notified
       GROUP BY i.target_id, i.ordering_key
       ORDER BY i.target_id COLLATE "C", i.ordering_key COLLATE "C"
       ON CONFLICT (target_id, ordering_key) DO UPDATE SET head_id = event_lanes.head_id WHERE false`,
      [...columns, channel, payload],
    );
  };

  // --- start -----------------------------------------------------------------

  // This instance's enqueue() told its watchers already; enqueueWith() and
  // other instances send other payloads.
  const onNotify = (payload: string | undefined) => {
    if (payload !== ownPayload) wakeWatchers();
  };
  const channelListener = await db.prepare(() =>
    createPostgresListener({
      pool,
      channel,
      logger,
      component: "postgres event queue",
      role: "event queue listener",
      logAttributes: { schema, channel },
      onNotify,
      // Jobs enqueued while the connection was down were not announced.
      onReconnect: wakeWatchers,
    }),
  );

  // --- the queue -------------------------------------------------------------

  return {
    pool,
    schema,
    channel,

    listenerPid() {
      return channelListener.pid();
    },

    async enqueue(jobs) {
      open();
      if (jobs.length === 0) return;
      try {
        await insertJobs(pool, jobs, ownPayload);
      } catch (error) {
        throw toConnectError(error);
      }
      wakeWatchers();
    },

    async enqueueWith(client, jobs) {
      open();
      if (jobs.length === 0) return;
      try {
        await insertJobs(client, jobs, "");
      } catch (error) {
        throw toConnectError(error);
      }
    },

    async claim(limit, graceMs) {
      open();
      if (!Number.isFinite(graceMs) || graceMs < 0) {
        throw new ConnectError(`graceMs must be a non-negative number, got ${String(graceMs)}`, Code.InvalidArgument);
      }
      const n = Math.floor(limit);
      if (!(n > 0)) return [];
      // Due lanes are the ready ones (available_at NULL: fresh heads and
      // successors), oldest head first, and the waiting ones whose time has
      // come (a retry, an expired lease), due longest first; each part is read
      // in the order of its index and locked, skipping the lanes concurrent
      // claims hold, so a claim costs O(limit) however many lanes wait. Of
      // both parts, the oldest heads are leased.
      const { rows } = await run<JobRow>(
        `WITH ready AS (
           SELECT target_id, ordering_key, head_id FROM ${q}.event_lanes
           WHERE available_at IS NULL
           ORDER BY head_id
           LIMIT $1
           FOR UPDATE SKIP LOCKED
         ),
         due AS (
           SELECT target_id, ordering_key, head_id FROM ${q}.event_lanes
           WHERE available_at <= now()
           ORDER BY available_at, head_id
           LIMIT $1
           FOR UPDATE SKIP LOCKED
         ),
         picked AS (
           SELECT target_id, ordering_key, head_id FROM ready
           UNION ALL
           SELECT target_id, ordering_key, head_id FROM due
           ORDER BY head_id
           LIMIT $1
         ),
         leased AS (
           UPDATE ${q}.event_jobs j
           SET attempts = j.attempts + 1,
               lease = gen_random_uuid()::text,
               lease_until = now() + make_interval(secs => (j.timeout_ms + $2::double precision) / 1000)
           FROM picked p
           WHERE j.id = p.head_id AND j.target_id = p.target_id AND j.ordering_key = p.ordering_key
           RETURNING j.*
         ),
         marked AS (
           UPDATE ${q}.event_lanes l SET available_at = leased.lease_until
           FROM leased
           WHERE l.target_id = leased.target_id AND l.ordering_key = leased.ordering_key
         )
         SELECT ${jobColumns}, lease, last_error FROM leased ORDER BY id`,
        [n, graceMs],
      );
      return rows.map(queuedJobFromRow);
    },

    async complete(job) {
      return settle(
        job,
        `WITH done AS (
           DELETE FROM ${q}.event_jobs WHERE ${leaseValid} RETURNING id, target_id, ordering_key
         ),
         ${advanceLane}
         SELECT id FROM done`,
        [job.id, job.lease],
      );
    },

    async retry(job, runAt, error) {
      open();
      if (!(runAt instanceof Date) || Number.isNaN(runAt.getTime())) {
        throw new ConnectError("runAt must be a valid date", Code.InvalidArgument);
      }
      return settle(
        job,
        `WITH retried AS (
           UPDATE ${q}.event_jobs SET lease = NULL, lease_until = NULL, last_error = $3
           WHERE ${leaseValid}
           RETURNING id, target_id, ordering_key
         )
         UPDATE ${q}.event_lanes l SET available_at = $4
         FROM retried r
         WHERE l.target_id = r.target_id AND l.ordering_key = r.ordering_key AND l.head_id = r.id`,
        [job.id, job.lease, storableText(error), runAt],
      );
    },

    async giveUp(job, error) {
      // The dead job is kept unless maxDead is 0; the dead jobs more than
      // maxDead give-ups old are deleted, skipping rows that a concurrent
      // give-up is deleting.
      return settle(
        job,
        `WITH done AS (
           DELETE FROM ${q}.event_jobs WHERE ${leaseValid} RETURNING ${jobColumns}
         ),
         ${advanceLane},
         buried AS (
           INSERT INTO ${q}.event_dead_jobs
             (id, instance_id, target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms, enqueued_at, attempts,
              error)
           SELECT ${jobColumns}, $3 FROM done WHERE $4::bigint > 0
           RETURNING seq
         ),
         pruned AS (
           DELETE FROM ${q}.event_dead_jobs WHERE seq IN (
             SELECT seq FROM ${q}.event_dead_jobs
             WHERE seq <= (SELECT seq FROM buried) - $4::bigint
             FOR UPDATE SKIP LOCKED
           )
         )
         SELECT id FROM done`,
        [job.id, job.lease, storableText(error), maxDead],
      );
    },

    async listDead(listOptions?: number | ListDeadOptions) {
      open();
      const { instanceId, limit = 100 } = typeof listOptions === "number" ? { limit: listOptions } : (listOptions ?? {});
      if (!Number.isSafeInteger(limit) || limit < 0) {
        throw new ConnectError(`limit must be a non-negative integer, got ${String(limit)}`, Code.InvalidArgument);
      }
      if (instanceId !== undefined && !isStorableText(instanceId)) return [];
      const { rows } = await run<DeadRow>(
        `SELECT id, instance_id, target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms, enqueued_at,
           attempts, error, died_at
         FROM ${q}.event_dead_jobs WHERE $2::text IS NULL OR instance_id = $2 ORDER BY seq DESC LIMIT $1`,
        [limit, instanceId ?? null],
      );
      return rows.map(deadJobFromRow);
    },

    async pending() {
      const { rows } = await run<{ n: number }>(`SELECT count(*)::integer AS n FROM ${q}.event_jobs`);
      return Number(rows[0]?.n ?? 0);
    },

    watch(listener) {
      return watchers.add(listener);
    },

    close() {
      closing ??= (async () => {
        closed = true;
        watchers.clear();
        await channelListener.close();
        await db.end();
      })();
      return closing;
    },
  };
}

/**
 * isLeaseOf tells whether a claimed job's ID and lease can be those of a
 * stored claim: anything else is a stale or foreign claim, settled by nobody.
 */
function isLeaseOf(job: QueuedJob): boolean {
  return (
    typeof job.id === "string" &&
    /^[1-9][0-9]{0,18}$/.test(job.id) &&
    isStorableText(job.lease) &&
    job.lease !== "" &&
    isStorableText(job.targetId) &&
    isStorableText(job.orderingKey)
  );
}

/**
 * jobColumnsOf returns the jobs as column arrays for unnest, or throws
 * Code.InvalidArgument for a job that cannot be stored.
 */
function jobColumnsOf(jobs: readonly EventJob[]): unknown[][] {
  jobs.forEach((job, i) => {
    const bad = (what: string) => new ConnectError(`job ${i}: ${what}`, Code.InvalidArgument);
    if (job.instanceId !== undefined && (typeof job.instanceId !== "string" || job.instanceId.includes("\0"))) {
      throw bad("instanceId must be a string without NUL characters");
    }
    for (const key of ["targetId", "orderingKey", "executionId", "eventType", "body"] as const) {
      if (typeof job[key] !== "string") throw bad(`${key} must be a string`);
      if (job[key].includes("\0")) throw bad(`${key} must not contain NUL characters`);
    }
    if (!(job.createdAt instanceof Date) || Number.isNaN(job.createdAt.getTime())) throw bad("createdAt must be a valid date");
    if (!Number.isInteger(job.timeoutMs) || job.timeoutMs <= 0 || job.timeoutMs > maxTimeoutMs) {
      throw bad(`timeoutMs must be a positive integer up to ${maxTimeoutMs}`);
    }
  });
  return [
    ...unnestColumns(jobs, ["targetId", "orderingKey", "executionId", "eventType", "body", "createdAt", "timeoutMs"]),
    jobs.map((job) => job.instanceId ?? ""),
  ];
}

/** jobFromRow returns the fields of a queued or dead job that both tables hold alike. */
function jobFromRow(row: JobColumns): EventJob & { id: string } {
  return {
    instanceId: row.instance_id,
    targetId: row.target_id,
    executionId: row.execution_id,
    eventType: row.event_type,
    orderingKey: row.ordering_key,
    body: row.body,
    createdAt: toDate(row.created_at),
    timeoutMs: Number(row.timeout_ms),
    id: String(row.id),
  };
}

function queuedJobFromRow(row: JobRow): QueuedJob {
  return {
    ...jobFromRow(row),
    attempt: Number(row.attempts),
    lease: row.lease,
    enqueuedAt: toDate(row.enqueued_at),
    lastError: row.last_error,
  };
}

function deadJobFromRow(row: DeadRow): DeadJob {
  return Object.freeze({
    ...jobFromRow(row),
    attempts: Number(row.attempts),
    error: row.error,
    enqueuedAt: toDate(row.enqueued_at),
    diedAt: toDate(row.died_at),
  });
}
