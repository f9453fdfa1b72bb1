import { createHash, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import type {
  ClaimOptions,
  DeadJob,
  DeadJobQuery,
  EventJob,
  EventQueue,
  ListDeadOptions,
  QueuedJob,
  SettleOptions,
  SettleResult,
  Settlement,
} from "../events/event-queue.js";
import { validateDeadJobQuery, validateListDeadOptions } from "../events/queue-options.js";
import { createJsonLogger, type Logger } from "../logger.js";
import { channelName, connectTimeoutMs, connectionSchema, openPool } from "./connection.js";
import { postgresErrorMapper } from "./errors.js";
import { createPostgresListener } from "./listener.js";
import { isStorableText, storableText, toDate, unnestColumns } from "./values.js";
import { createWatchers } from "./watchers.js";
import { lockClasses } from "./lock-classes.js";

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
   * connection and the wake-up lock's connection are separate clients
   * created with the pool's options.
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
   * outbox pattern). It is one statement, which inserts into the inbox table
   * and locks nothing the queue's workers use. Watchers of every instance,
   * this one included, that wait for jobs hear of them through NOTIFY once
   * the transaction commits (see createPostgresEventQueue). The client is
   * neither released nor ended. Rejects like enqueue; a failure aborts the
   * caller's transaction, as any failed statement does.
   */
  enqueueWith(client: pg.ClientBase, jobs: readonly EventJob[]): Promise<void>;
  /**
   * enqueueAndCommit adds jobs through `client`, as enqueueWith does, and
   * commits the transaction open on it in the same round trip (one simple
   * query, "INSERT ...; COMMIT", the values written as literals), so that a
   * write with events costs no more round trips than one without. With no
   * jobs it only commits. When the insert fails, nothing is committed: the
   * transaction is aborted and the caller rolls it back, as after any failed
   * statement. The client is neither released nor ended.
   */
  enqueueAndCommit(client: pg.ClientBase, jobs: readonly EventJob[]): Promise<void>;
  /**
   * listenerPid returns the backend process ID of the LISTEN connection
   * (see pg_stat_activity), or undefined while it is reconnecting or after
   * close. For diagnostics.
   */
  listenerPid(): number | undefined;
}

/** Largest timeoutMs of a job: an integer column. */
const maxTimeoutMs = 2 ** 31 - 1;

/** First key of the wake-up lock; the second is hashtext(channel). */
const wakeLockClass = lockClasses.eventWake;

/** The most enqueued jobs one cycle moves from the inbox into their lanes. */
const maxIntake = 2000;
/** While claims come back with jobs but not full, watchers are woken this often to claim again. */
const activePollMs = 25;
/** While the wake-up lock cannot be taken, watchers are woken after this delay, doubling up to wakeRetryMaxMs. */
const wakeRetryMinMs = 10;
const wakeRetryMaxMs = 1000;

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
 * Enqueues (and requeues) insert into `event_inbox`, one row per job and
 * nothing else, so that a write with an event costs little more than the
 * write. Claims take them in: each claim first moves the inbox's oldest
 * committed rows (up to 2 000) into `event_jobs` and their lanes, one intake
 * at a time across all instances (an advisory lock), so jobs join their lanes
 * in the order of their IDs. The jobs of one (instance, target, ordering
 * key), a lane, are settled one at a time, in order: the lane's row in
 * `event_lanes` names its head job, the only one that can be claimed. A
 * claim picks due heads (not leased, or whose lease ran out) and locks and
 * leases their jobs, skipping those a concurrent claim holds; settling heads
 * (settle, complete, retry, giveUp) locks their lanes and, in the next
 * statement of the same transaction, makes each lane's next job its head, or
 * deletes the lane; an intake locks (or creates) the lanes of its jobs, so a
 * settlement either sees the new jobs or leaves the lane for the intake to
 * create again. A worker's cycle (settleAndClaim) is one call of the function
 * `event_queue_cycle`: intake, settlements, claim. Claims read the lanes
 * through two partial indexes (ready heads by ID, heads waiting for a retry
 * by due time), so their cost does not grow with the number of jobs queued
 * behind the heads. Claims and settlements commit asynchronously
 * (synchronous_commit off): a crash of the database server may undo the last
 * fraction of a second of them, which at worst delivers those jobs again, as
 * at-least-once delivery allows. Enqueues and requeues commit as the
 * caller's transaction does.
 *
 * Within a lane, jobs are settled in the order of their IDs, which is the
 * order of the enqueues that committed one after the other; enqueues that
 * overlap in time have no order between them. Across lanes, a claim takes the
 * due heads oldest first (instances in turns with ClaimOptions, among the 4 ×
 * limit oldest), except that of more than `limit` lanes whose retry time
 * came, those due longest go first. The lease of a claim lasts the job's
 * timeoutMs plus graceMs from the database's now(); retry stores runAt as
 * given. Given-up jobs are kept in `event_dead_jobs` (see maxDead).
 *
 * Wake-ups: an enqueue sends a NOTIFY, which serializes the commits of the
 * transactions that send one, only while some queue instance's watchers wait
 * for jobs. Such an instance holds the wake-up lock (an advisory lock) through
 * a connection of its own; every enqueue takes the lock shared, without
 * waiting, for the rest of its transaction, and sends the NOTIFY when it
 * cannot. An instance takes the lock when a claim finds nothing due (and
 * when its first watcher comes): it gets it once no enqueue is in flight,
 * then wakes its watchers once more, so that they see what those enqueues
 * committed; until it gets it, it wakes its watchers after 10 ms, doubling up
 * to 1 s, to claim again. It lets go of the lock when a claim comes back with
 * jobs, and while claims come back with jobs but fewer than asked, wakes its
 * watchers every 25 ms to claim again. So under load, enqueues send no
 * NOTIFY and commit side by side, and an idle worker still hears of the next
 * job at once.
 *
 * The queue's statements are named prepared statements, and the wake-up lock
 * is a session lock: use a pooler in session mode, not in transaction mode.
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
  const instanceId = randomUUID();
  const ownPayload = JSON.stringify({ source: instanceId });
  const watchers = createWatchers();
  let watcherCount = 0;
  let closed = false;
  let closing: Promise<void> | undefined;

  const open = () => {
    if (closed) throw new ConnectError("event queue is closed", Code.Unavailable);
  };
  /**
   * run runs one of the queue's statements on the pool as a named prepared
   * statement: each connection parses it once, and PostgreSQL can keep its plan.
   */
  const run = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<pg.QueryResult<R>> => {
    open();
    try {
      return await pool.query<R>({ name: statementName(text), text, values });
    } catch (error) {
      throw toConnectError(error);
    }
  };

  // --- wake-ups ----------------------------------------------------------------

  const wakeLock = createWakeLock(pool, channel, logger);
  let wantWake = false; // the watchers wait for jobs: hold the wake-up lock
  let locking = false; // a lock or unlock is in flight
  let claimsStarted = 0;
  let wakeTimer: NodeJS.Timeout | undefined;
  let wakeTimerAt = 0;
  let retryDelay = wakeRetryMinMs;

  const wakeWatchers = () => {
    if (wakeTimer !== undefined) {
      clearTimeout(wakeTimer);
      wakeTimer = undefined;
    }
    watchers.notify();
  };
  /** wakeWatchersIn wakes the watchers in `ms` (or earlier) and tries for the wake-up lock again then. */
  const wakeWatchersIn = (ms: number) => {
    const at = Date.now() + ms;
    if (wakeTimer !== undefined && wakeTimerAt <= at) return;
    if (wakeTimer !== undefined) clearTimeout(wakeTimer);
    wakeTimerAt = at;
    wakeTimer = setTimeout(() => {
      wakeTimer = undefined;
      if (closed) return;
      watchers.notify();
      syncWakeLock();
    }, ms);
    wakeTimer.unref();
  };
  /**
   * syncWakeLock takes or lets go of the wake-up lock until its state is
   * what wantWake says, one step at a time.
   */
  const syncWakeLock = () => {
    if (locking || closed || wantWake === wakeLock.held()) return;
    locking = true;
    const claimsBefore = claimsStarted;
    const step = wantWake ? wakeLock.tryLock() : wakeLock.unlock().then(() => false);
    void step.then((got) => {
      locking = false;
      if (closed) return;
      if (wantWake && !got) {
        // An enqueue is in flight (or another instance waits): look again soon.
        wakeWatchersIn(retryDelay);
        retryDelay = Math.min(wakeRetryMaxMs, retryDelay * 2);
        return;
      }
      if (got) {
        retryDelay = wakeRetryMinMs;
        // Enqueues that committed before the lock was granted sent no
        // NOTIFY: claims that ran before may have missed them.
        if (wantWake && claimsBefore > 0) wakeWatchers();
      }
      syncWakeLock();
    });
  };
  const afterClaim = (claimed: number, limit: number) => {
    if (watcherCount === 0) return;
    if (claimed === 0) {
      wantWake = true;
    } else {
      wantWake = false;
      retryDelay = wakeRetryMinMs;
      if (claimed < limit) wakeWatchersIn(activePollMs);
    }
    syncWakeLock();
  };

  /**
   * insertJobs adds the jobs to the inbox, in order, in one statement:
   * atomic on its own, or part of the caller's transaction. It locks no lane
   * (workers move the jobs into their lanes). It takes the wake-up lock
   * shared, and when it cannot, a NOTIFY goes out on commit.
   */
  const insertJobs = async (client: pg.Pool | pg.ClientBase, jobs: readonly EventJob[], payload: string) => {
    const columns = jobColumnsOf(jobs);
    if (jobs.length === 1) {
      await client.query({ name: insertOneName, text: insertOneText, values: [...columns.map((c) => c[0]), channel, payload] });
      return;
    }
    await client.query({ name: insertManyName, text: insertManyText, values: [...columns, channel, payload] });
  };
  const woken = `woken AS (
       SELECT CASE WHEN pg_try_advisory_xact_lock_shared(${wakeLockClass}, hashtext($9)) THEN false
         ELSE pg_notify($9, $10) IS NULL END AS done
     )`;
  const inboxColumns = "instance_id, target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms";
  /** The SQL types of jobColumnsOf's columns, in its order. */
  const inboxTypes = ["text", "text", "text", "text", "text", "text", "timestamptz", "integer"] as const;
  // As `woken`, for enqueueAndCommit's simple query: the channel and an empty payload as literals.
  const wakeExpression = `CASE WHEN pg_try_advisory_xact_lock_shared(${wakeLockClass}, hashtext(${pg.escapeLiteral(channel)}))
       THEN NULL ELSE pg_notify(${pg.escapeLiteral(channel)}, '') END`;
  const insertOneText = `WITH ${woken}
     INSERT INTO ${q}.event_inbox (${inboxColumns})
     SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::timestamptz, $8::integer FROM woken`;
  const insertOneName = statementName(insertOneText);
  const insertManyText = `WITH ${woken}
     INSERT INTO ${q}.event_inbox (${inboxColumns})
     SELECT t.instance_id, t.target_id, t.ordering_key, t.execution_id, t.event_type, t.body, t.created_at, t.timeout_ms
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::timestamptz[], $8::integer[])
       WITH ORDINALITY AS t(instance_id, target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms, n)
     CROSS JOIN woken
     ORDER BY t.n`;
  const insertManyName = statementName(insertManyText);

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

  /**
   * cycle settles `settlements` (waiting for busy lanes if `wait`) and then
   * claims up to `limit` jobs, in one call of event_queue_cycle.
   */
  const cycle = async (
    settlements: readonly Settlement[],
    wait: boolean,
    limit: number,
    graceMs: number,
    claimOptions: ClaimOptions,
  ): Promise<{ results: SettleResult[]; jobs: QueuedJob[] }> => {
    open();
    if (!Number.isFinite(graceMs) || graceMs < 0) {
      throw new ConnectError(`graceMs must be a non-negative number, got ${String(graceMs)}`, Code.InvalidArgument);
    }
    const results: SettleResult[] = settlements.map(() => "stale");
    const sent: Settlement[] = [];
    const sentAt: number[] = [];
    for (const [i, s] of settlements.entries()) {
      if (s.outcome === "retry" && (!(s.runAt instanceof Date) || Number.isNaN(s.runAt.getTime()))) {
        throw new ConnectError("runAt must be a valid date", Code.InvalidArgument);
      }
      if (isLeaseOf(s.job)) {
        sent.push(s);
        sentAt.push(i);
      }
    }
    const n = Number.isFinite(limit) ? Math.max(0, Math.floor(limit)) : 0;
    if (sent.length === 0 && n === 0) return { results, jobs: [] };
    const limits = [...(claimOptions.instanceLimits ?? new Map<string, number>())].filter(([name]) => isStorableText(name));
    const skipped = limits.filter(([, l]) => !(l > 0)).map(([name]) => name);
    const capped = limits.filter(([, l]) => l > 0);
    const maxPerInstance = claimOptions.maxPerInstance;
    const defaultCap =
      maxPerInstance === undefined || !(maxPerInstance < maxTimeoutMs) ? maxTimeoutMs : Math.max(0, Math.floor(maxPerInstance));
    // With per-instance limits, a claim looks at more heads than it takes,
    // so that the instances' turns have heads of several instances to go by.
    const window = maxPerInstance === undefined && capped.length === 0 ? n : Math.min(n * 4, n + 4096);
    if (n > 0) claimsStarted++;
    const { rows } = await run<CycleRow>(cycleText, [
      sent.map((s) => s.job.id),
      sent.map((s) => s.job.lease),
      sent.map(kindOf),
      sent.map((s) => (s.outcome === "retry" ? s.runAt : null)),
      sent.map((s) => (s.outcome === "complete" ? "" : storableText(s.error))),
      maxDead,
      wait,
      n,
      graceMs,
      window,
      skipped,
      capped.map(([name]) => name),
      capped.map(([, l]) => Math.floor(l)),
      defaultCap,
      maxIntake,
    ]);
    const byId = new Map<string, SettleResult>();
    const jobs: QueuedJob[] = [];
    for (const row of rows) {
      if (row.o_settled_id !== null) byId.set(String(row.o_settled_id), row.o_outcome as SettleResult);
      else jobs.push(queuedJobFromCycleRow(row));
    }
    sent.forEach((s, k) => {
      results[sentAt[k]!] = byId.get(s.job.id) ?? "stale";
    });
    if (n > 0) afterClaim(jobs.length, n);
    return { results, jobs };
  };
  const cycleText = `SELECT * FROM ${q}.event_queue_cycle($1::bigint[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
    $6::bigint, $7::boolean, $8::integer, $9::double precision, $10::integer, $11::text[], $12::text[], $13::integer[],
    $14::integer, $15::integer)`;

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
      watchers.notify();
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

    async enqueueAndCommit(client, jobs) {
      open();
      if (jobs.length === 0) {
        await client.query("COMMIT");
        return;
      }
      const columns = jobColumnsOf(jobs);
      const rows = jobs.map((_, i) => `(${columns.map((column, c) => literalOf(column[i], inboxTypes[c]!)).join(", ")})`);
      try {
        // Two statements: the insert (a VALUES list is inserted, and so numbered, in its order), which wakes
        // waiting workers through its RETURNING (PostgreSQL sends a notification once per transaction), and the commit.
        await client.query(`INSERT INTO ${q}.event_inbox (${inboxColumns}) VALUES ${rows.join(", ")} RETURNING ${wakeExpression}; COMMIT`);
      } catch (error) {
        throw toConnectError(error);
      }
    },

    async claim(limit, graceMs, claimOptions: ClaimOptions = {}) {
      return (await cycle([], true, limit, graceMs, claimOptions)).jobs;
    },

    async settleAndClaim(settlements, limit, graceMs, claimOptions: ClaimOptions = {}) {
      return cycle(settlements, false, limit, graceMs, claimOptions);
    },

    async settle(settlements, settleOptions: SettleOptions = {}) {
      return (await cycle(settlements, settleOptions.wait ?? true, 0, 0, {})).results;
    },

    async complete(job) {
      return (await cycle([{ job, outcome: "complete" }], true, 0, 0, {})).results[0] === "settled";
    },

    async retry(job, runAt, error) {
      return (await cycle([{ job, outcome: "retry", runAt, error }], true, 0, 0, {})).results[0] === "settled";
    },

    async giveUp(job, error) {
      return (await cycle([{ job, outcome: "giveUp", error }], true, 0, 0, {})).results[0] === "settled";
    },

    async listDead(listOptions?: number | ListDeadOptions) {
      open();
      const { instanceId: instance, limit } = validateListDeadOptions(listOptions);
      if (instance !== undefined && !isStorableText(instance)) return [];
      const columns = `id, instance_id, target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms,
        enqueued_at, attempts, error, died_at`;
      const { rows } =
        instance === undefined
          ? await run<DeadRow>(`SELECT ${columns} FROM ${q}.event_dead_jobs ORDER BY seq DESC LIMIT $1`, [limit])
          : await run<DeadRow>(
              `SELECT ${columns} FROM ${q}.event_dead_jobs WHERE instance_id = $2 ORDER BY seq DESC LIMIT $1`,
              [limit, instance],
            );
      return rows.map(deadJobFromRow);
    },

    async requeueDead(query: DeadJobQuery) {
      open();
      validateDeadJobQuery(query);
      const { instanceId: instance, id, targetId, eventType } = query;
      if (![instance, targetId, eventType].every((v) => v === undefined || isStorableText(v))) return 0;
      if (id !== undefined && !/^[1-9][0-9]{0,18}$/.test(id)) return 0;
      // Deleting the dead rows is what makes a requeue happen once: of two
      // concurrent ones, the second waits for the first and then finds the
      // rows gone. The jobs go to the inbox, in their first enqueue order, so
      // to the ends of their lanes; the NOTIFY works as for an enqueue.
      const { rows } = await run<{ n: number }>(
        `WITH moved AS (
           DELETE FROM ${q}.event_dead_jobs
           WHERE instance_id = $1 AND ($2::bigint IS NULL OR id = $2::bigint) AND ($3::text IS NULL OR target_id = $3)
             AND ($4::text IS NULL OR event_type = $4)
           RETURNING *
         ),
         woken AS (
           SELECT CASE WHEN pg_try_advisory_xact_lock_shared(${wakeLockClass}, hashtext($5)) THEN false
             ELSE pg_notify($5, $6) IS NULL END AS done
         ),
         inserted AS (
           INSERT INTO ${q}.event_inbox (${inboxColumns}, last_error)
           SELECT m.instance_id, m.target_id, m.ordering_key, m.execution_id, m.event_type, m.body, m.created_at,
             m.timeout_ms, m.error
           FROM moved m CROSS JOIN woken ORDER BY m.id
           RETURNING id
         )
         SELECT count(*)::integer AS n FROM inserted`,
        [instance, id ?? null, targetId ?? null, eventType ?? null, channel, ownPayload],
      );
      const n = Number(rows[0]?.n ?? 0);
      if (n > 0) watchers.notify();
      return n;
    },

    async pending() {
      const { rows } = await run<{ n: number }>(
        `SELECT ((SELECT count(*) FROM ${q}.event_jobs) + (SELECT count(*) FROM ${q}.event_inbox))::integer AS n`,
      );
      return Number(rows[0]?.n ?? 0);
    },

    watch(listener) {
      const remove = watchers.add(listener);
      watcherCount++;
      if (watcherCount === 1) {
        // Wait for jobs from now on (until a claim comes back with some).
        wantWake = true;
        syncWakeLock();
      }
      let removed = false;
      return () => {
        if (removed) return;
        removed = true;
        remove();
        watcherCount--;
        if (watcherCount === 0) {
          wantWake = false;
          syncWakeLock();
        }
      };
    },

    close() {
      closing ??= (async () => {
        closed = true;
        watchers.clear();
        if (wakeTimer !== undefined) clearTimeout(wakeTimer);
        await wakeLock.close();
        await channelListener.close();
        await db.end();
      })();
      return closing;
    },
  };
}

/**
 * WakeLock is the wake-up lock of one queue instance, held through a
 * connection of its own (see createPostgresEventQueue).
 */
interface WakeLock {
  /** held tells whether the lock is held now. */
  held(): boolean;
  /** tryLock takes the lock if it can at once; resolves whether it holds it. Never rejects. */
  tryLock(): Promise<boolean>;
  /** unlock lets go of the lock. Never rejects. */
  unlock(): Promise<void>;
  /** close ends the connection, which lets go of the lock. */
  close(): Promise<void>;
}

/**
 * createWakeLock returns the WakeLock of `channel`. Its connection, created
 * with the pool's options, is opened on first use and again after it was
 * lost (a lost connection has let go of the lock); it is never part of a
 * request's path, and its failures only mean that the lock is not held.
 */
function createWakeLock(pool: pg.Pool, channel: string, logger: Logger): WakeLock {
  let client: pg.Client | undefined;
  let held = false;
  let closed = false;
  const config: pg.ClientConfig = {
    ...pool.options,
    keepAlive: true,
    connectionTimeoutMillis: pool.options.connectionTimeoutMillis || connectTimeoutMs,
    application_name: `${pool.options.application_name ?? "connect-actions"} event queue wake-up lock`,
  };
  const drop = (c: pg.Client) => {
    if (client === c) {
      client = undefined;
      held = false;
    }
    void c.end().catch(() => {});
  };
  const connect = async (): Promise<pg.Client> => {
    if (client !== undefined) return client;
    const c = new pg.Client(config);
    // A lost connection must not crash the process: it only lets go of the lock.
    c.on("error", (error) => {
      logger.debug("postgres event queue: wake-up lock connection lost", { error });
      drop(c);
    });
    c.on("end", () => drop(c));
    client = c;
    try {
      await c.connect();
    } catch (error) {
      drop(c);
      throw error;
    }
    return c;
  };
  const query = async (text: string): Promise<boolean> => {
    if (closed) return false;
    let c: pg.Client | undefined;
    try {
      c = await connect();
      const { rows } = await c.query<{ ok: boolean }>(text, [wakeLockClass, channel]);
      return rows[0]?.ok === true;
    } catch {
      if (c !== undefined) drop(c);
      return false;
    }
  };
  return {
    held: () => held,
    async tryLock() {
      if (held) return true;
      held = await query("SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok");
      return held;
    },
    async unlock() {
      if (!held) return;
      held = false;
      await query("SELECT pg_advisory_unlock($1, hashtext($2)) AS ok");
    },
    async close() {
      closed = true;
      held = false;
      const c = client;
      client = undefined;
      await c?.end().catch(() => {});
    },
  };
}

/**
 * statementName returns the name of the prepared statement `text`: derived
 * from the text, so that queues with other schemas or channels, sharing a
 * connection, never reuse a name for another text.
 */
function statementName(text: string): string {
  return `connect_actions_queue_${createHash("sha256").update(text).digest("hex").slice(0, 24)}`;
}

/** kindOf returns the settlement's kind as event_queue_cycle takes it. */
function kindOf(s: Settlement): string {
  return s.outcome === "giveUp" ? "give-up" : s.outcome;
}

/**
 * isLeaseOf tells whether a claimed job's ID and lease can be those of a
 * stored claim: anything else is a stale or foreign claim, settled by nobody.
 */
function isLeaseOf(job: QueuedJob): boolean {
  return typeof job.id === "string" && /^[1-9][0-9]{0,18}$/.test(job.id) && isStorableText(job.lease) && job.lease !== "";
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
    jobs.map((job) => job.instanceId ?? ""),
    ...unnestColumns(jobs, ["targetId", "orderingKey", "executionId", "eventType", "body", "createdAt", "timeoutMs"]),
  ];
}

/**
 * literalOf writes a value of jobColumnsOf (checked there) as an SQL literal
 * of `type`: text escaped by pg.escapeLiteral, a date as its ISO text, an
 * integer as its digits.
 */
function literalOf(value: unknown, type: "text" | "timestamptz" | "integer"): string {
  switch (type) {
    case "text":
      return `${pg.escapeLiteral(value as string)}::text`;
    case "timestamptz":
      return `${pg.escapeLiteral((value as Date).toISOString())}::timestamptz`;
    case "integer":
      return `${String(Math.trunc(value as number))}::integer`;
  }
}

/** jobFromRow returns the fields of a queued or dead job that both tables hold alike. */
function jobFromRow(row: JobColumns): EventJob & { instanceId: string; id: string } {
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

/** What event_queue_cycle returns: a settlement's outcome, or a claimed job. */
interface CycleRow {
  o_settled_id: string | null;
  o_outcome: string | null;
  o_id: string;
  o_instance_id: string;
  o_target_id: string;
  o_ordering_key: string;
  o_execution_id: string;
  o_event_type: string;
  o_body: string;
  o_created_at: Date | string;
  o_timeout_ms: number;
  o_enqueued_at: Date | string;
  o_attempts: number;
  o_lease: string;
  o_last_error: string;
}

function queuedJobFromCycleRow(row: CycleRow): QueuedJob {
  return {
    instanceId: row.o_instance_id,
    targetId: row.o_target_id,
    executionId: row.o_execution_id,
    eventType: row.o_event_type,
    orderingKey: row.o_ordering_key,
    body: row.o_body,
    createdAt: toDate(row.o_created_at),
    timeoutMs: Number(row.o_timeout_ms),
    id: String(row.o_id),
    attempt: Number(row.o_attempts),
    lease: row.o_lease,
    enqueuedAt: toDate(row.o_enqueued_at),
    lastError: row.o_last_error,
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
