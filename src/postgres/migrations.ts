import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { inTransaction } from "./transaction.js";
import { lockClasses } from "./lock-classes.js";

/**
 * PostgresMigration is one step of the PostgreSQL schema of connect-actions.
 * Migrations are applied in ascending `version` order, each exactly once per
 * schema, and recorded in the table `<schema>.migrations`.
 */
export interface PostgresMigration {
  /** Positive integer, strictly greater than the version of the previous migration. */
  readonly version: number;
  /** Short kebab-case description, recorded next to the version. */
  readonly name: string;
  /**
   * sql returns the statements of the migration. It receives the schema as a
   * quoted identifier (for example `"connect_actions"`); the statements also
   * run with `search_path` set to that schema, so unqualified names work, but
   * qualify names in function bodies, which resolve them when called.
   */
  readonly sql: (schema: string) => string;
}

/**
 * postgresMigrations is the ordered, append-only list of migrations of the
 * schema used by createPostgresStore, createPostgresEventQueue and
 * createPostgresDeliveryLog. Never change or remove an entry that
 * has been released: append a new one with the next version instead.
 *
 * 1. `targets` and `executions`.
 * 2. The event queue (createPostgresEventQueue): `event_jobs`, one row per
 *    unsettled delivery; `event_lanes`, one row per (target, ordering key)
 *    with unsettled jobs, pointing at the lane's head job and saying when it
 *    may be claimed; `event_dead_jobs`, the given-up jobs.
 * 3. The delivery log (createPostgresDeliveryLog): `delivery_log`.
 * 4. Instances: `instance_id` on targets, executions, queued and dead event
 *    jobs, and the delivery log;
 *    target names unique per instance, executions keyed by (instance, ID).
 *    Existing rows keep working in the default instance ('').
 * 5. Payload types and keys: `payload_type` on targets ('json' for existing
 *    ones); `target_public_keys`, the public keys of targets (deleted with
 *    their target; at most one active key per target); `signing_keys`, the
 *    instances' keys that sign JWT payloads (createPostgresSigningKeySource).
 * 6. Execution references: `execution_refs`, one row per entry of an
 *    execution's list (a target or an include), kept in step with
 *    `executions` by a trigger, so that writes find the executions naming a
 *    target or including an execution, and the include graph around an
 *    execution, through an index instead of reading the instance's
 *    executions. Replaces the GIN index on `executions.targets`.
 * 7. Event queue per instance and in batches: `event_lanes` keyed by
 *    instance, target and ordering key (existing lanes in the default
 *    instance), dead jobs indexed per instance; `event_inbox`, where
 *    enqueues add jobs; and the function `event_queue_cycle`, which takes in
 *    enqueued jobs, settles a batch of claimed jobs and claims more in one
 *    call.
 * 8. Delivery log excerpts: `request_excerpt`, `response_excerpt` and
 *    `test` on `delivery_log`, nullable (records without excerpts, and the
 *    rows written before, have NULL).
 */
export const postgresMigrations: readonly PostgresMigration[] = Object.freeze([
  {
    version: 1,
    name: "targets-and-executions",
    sql: (schema: string) => `
      CREATE TABLE ${schema}.targets (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT targets_seq_key UNIQUE,
        name text NOT NULL CONSTRAINT targets_name_key UNIQUE,
        type text NOT NULL CHECK (type IN ('webhook', 'call', 'async')),
        interrupt_on_error boolean NOT NULL,
        endpoint text NOT NULL,
        timeout_ms integer NOT NULL CHECK (timeout_ms > 0),
        signing_key text NOT NULL,
        creation_date timestamptz NOT NULL,
        change_date timestamptz NOT NULL
      );
      CREATE TABLE ${schema}.executions (
        id text COLLATE "C" PRIMARY KEY,
        condition jsonb NOT NULL,
        targets jsonb NOT NULL CHECK (jsonb_typeof(targets) = 'array'),
        creation_date timestamptz NOT NULL,
        change_date timestamptz NOT NULL
      );
      CREATE INDEX executions_targets_idx ON ${schema}.executions USING gin (targets jsonb_path_ops);
    `,
  },
  {
    version: 2,
    name: "event-queue",
    sql: (schema: string) => `
      CREATE TABLE ${schema}.event_jobs (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        target_id text COLLATE "C" NOT NULL,
        ordering_key text COLLATE "C" NOT NULL,
        execution_id text NOT NULL,
        event_type text NOT NULL,
        body text NOT NULL,
        created_at timestamptz NOT NULL,
        timeout_ms integer NOT NULL CHECK (timeout_ms > 0),
        enqueued_at timestamptz NOT NULL DEFAULT now(),
        attempts integer NOT NULL DEFAULT 0,
        lease text,
        lease_until timestamptz,
        last_error text NOT NULL DEFAULT ''
      ) WITH (fillfactor = 90);
      -- The successor of a settled head: the lane's next job.
      CREATE INDEX event_jobs_lane_idx ON ${schema}.event_jobs (target_id, ordering_key, id);
      CREATE TABLE ${schema}.event_lanes (
        target_id text COLLATE "C" NOT NULL,
        ordering_key text COLLATE "C" NOT NULL,
        head_id bigint NOT NULL,
        -- NULL: the head is due now; else it is leased or waits for a retry until then.
        available_at timestamptz,
        PRIMARY KEY (target_id, ordering_key)
      );
      CREATE INDEX event_lanes_ready_idx ON ${schema}.event_lanes (head_id) WHERE available_at IS NULL;
      CREATE INDEX event_lanes_waiting_idx ON ${schema}.event_lanes (available_at, head_id) WHERE available_at IS NOT NULL;
      CREATE TABLE ${schema}.event_dead_jobs (
        seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id bigint NOT NULL,
        target_id text NOT NULL,
        ordering_key text NOT NULL,
        execution_id text NOT NULL,
        event_type text NOT NULL,
        body text NOT NULL,
        created_at timestamptz NOT NULL,
        timeout_ms integer NOT NULL,
        enqueued_at timestamptz NOT NULL,
        attempts integer NOT NULL,
        error text NOT NULL,
        died_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
  {
    version: 3,
    name: "delivery-log",
    sql: (schema: string) => `
      CREATE TABLE ${schema}.delivery_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        target_id text NOT NULL,
        target_name text NOT NULL,
        execution_id text NOT NULL,
        trigger text NOT NULL,
        endpoint text NOT NULL,
        status integer NOT NULL,
        duration_ms double precision NOT NULL,
        error text,
        attempt integer NOT NULL,
        async boolean NOT NULL,
        start_time timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE INDEX delivery_log_target_idx ON ${schema}.delivery_log (target_id, id);
      CREATE INDEX delivery_log_execution_idx ON ${schema}.delivery_log (execution_id, id);
      CREATE INDEX delivery_log_start_time_idx ON ${schema}.delivery_log (start_time);
      CREATE INDEX delivery_log_failed_idx ON ${schema}.delivery_log (id) WHERE error IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: "instances",
    sql: (schema: string) => `
      ALTER TABLE ${schema}.targets ADD COLUMN instance_id text COLLATE "C" NOT NULL DEFAULT '';
      ALTER TABLE ${schema}.targets DROP CONSTRAINT targets_name_key;
      ALTER TABLE ${schema}.targets ADD CONSTRAINT targets_instance_name_key UNIQUE (instance_id, name);
      CREATE INDEX targets_instance_seq_idx ON ${schema}.targets (instance_id, seq);
      ALTER TABLE ${schema}.executions ADD COLUMN instance_id text COLLATE "C" NOT NULL DEFAULT '';
      ALTER TABLE ${schema}.executions DROP CONSTRAINT executions_pkey;
      ALTER TABLE ${schema}.executions ADD CONSTRAINT executions_pkey PRIMARY KEY (instance_id, id);
      ALTER TABLE ${schema}.delivery_log ADD COLUMN instance_id text COLLATE "C" NOT NULL DEFAULT '';
      ALTER TABLE ${schema}.event_jobs ADD COLUMN instance_id text COLLATE "C" NOT NULL DEFAULT '';
      ALTER TABLE ${schema}.event_dead_jobs ADD COLUMN instance_id text COLLATE "C" NOT NULL DEFAULT '';
      CREATE INDEX delivery_log_instance_idx ON ${schema}.delivery_log (instance_id, id);
    `,
  },
  {
    version: 5,
    name: "payload-types-and-keys",
    sql: (schema: string) => `
      ALTER TABLE ${schema}.targets ADD COLUMN payload_type text NOT NULL DEFAULT 'json'
        CHECK (payload_type IN ('json', 'jwt', 'jwe'));
      CREATE TABLE ${schema}.target_public_keys (
        id text PRIMARY KEY,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        instance_id text COLLATE "C" NOT NULL,
        target_id text NOT NULL REFERENCES ${schema}.targets (id) ON DELETE CASCADE,
        public_key text NOT NULL,
        fingerprint text NOT NULL,
        key_type text NOT NULL CHECK (key_type IN ('rsa', 'ec')),
        active boolean NOT NULL DEFAULT false,
        expiration_date timestamptz,
        creation_date timestamptz NOT NULL,
        change_date timestamptz NOT NULL
      );
      CREATE INDEX target_public_keys_target_idx ON ${schema}.target_public_keys (target_id, seq);
      CREATE UNIQUE INDEX target_public_keys_active_idx ON ${schema}.target_public_keys (target_id) WHERE active;
      CREATE TABLE ${schema}.signing_keys (
        instance_id text COLLATE "C" NOT NULL,
        id text NOT NULL,
        algorithm text NOT NULL,
        private_key text NOT NULL,
        public_jwk jsonb NOT NULL,
        creation_date timestamptz NOT NULL,
        signs_from timestamptz NOT NULL,
        signs_until timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (instance_id, id)
      );
    `,
  },
  {
    version: 6,
    name: "execution-references",
    sql: (schema: string) => `
      CREATE TABLE ${schema}.execution_refs (
        instance_id text COLLATE "C" NOT NULL,
        execution_id text COLLATE "C" NOT NULL,
        kind text COLLATE "C" NOT NULL CHECK (kind IN ('target', 'include')),
        ref_id text COLLATE "C" NOT NULL,
        PRIMARY KEY (instance_id, execution_id, kind, ref_id)
      );
      -- Who names a target, who includes an execution.
      CREATE INDEX execution_refs_ref_idx ON ${schema}.execution_refs (instance_id, ref_id, kind);
      CREATE FUNCTION ${schema}.execution_refs_sync() RETURNS trigger LANGUAGE plpgsql AS $fn$
      BEGIN
        IF TG_OP = 'UPDATE' AND NEW.targets = OLD.targets AND NEW.instance_id = OLD.instance_id AND NEW.id = OLD.id THEN
          RETURN NULL;
        END IF;
        IF TG_OP <> 'INSERT' THEN
          DELETE FROM ${schema}.execution_refs WHERE instance_id = OLD.instance_id AND execution_id = OLD.id;
        END IF;
        IF TG_OP <> 'DELETE' THEN
          INSERT INTO ${schema}.execution_refs (instance_id, execution_id, kind, ref_id)
          SELECT NEW.instance_id, NEW.id, CASE WHEN e ? 'target' THEN 'target' ELSE 'include' END,
                 COALESCE(e ->> 'target', e ->> 'include')
          FROM jsonb_array_elements(NEW.targets) AS e
          WHERE COALESCE(e ->> 'target', e ->> 'include') IS NOT NULL
          ON CONFLICT DO NOTHING;
        END IF;
        RETURN NULL;
      END
      $fn$;
      CREATE TRIGGER executions_refs_sync AFTER INSERT OR UPDATE OR DELETE ON ${schema}.executions
        FOR EACH ROW EXECUTE FUNCTION ${schema}.execution_refs_sync();
      INSERT INTO ${schema}.execution_refs (instance_id, execution_id, kind, ref_id)
      SELECT x.instance_id, x.id, CASE WHEN e ? 'target' THEN 'target' ELSE 'include' END, COALESCE(e ->> 'target', e ->> 'include')
      FROM ${schema}.executions AS x, jsonb_array_elements(x.targets) AS e
      WHERE COALESCE(e ->> 'target', e ->> 'include') IS NOT NULL
      ON CONFLICT DO NOTHING;
      DROP INDEX ${schema}.executions_targets_idx;
    `,
  },
  {
    version: 7,
    name: "event-queue-instances-and-batches",
    sql: (schema: string) => `
      -- event_jobs and event_dead_jobs have an instance_id since migration 4.
      ALTER TABLE ${schema}.event_lanes ADD COLUMN instance_id text COLLATE "C" NOT NULL DEFAULT '';
      ALTER TABLE ${schema}.event_lanes DROP CONSTRAINT event_lanes_pkey,
        ADD CONSTRAINT event_lanes_pkey PRIMARY KEY (instance_id, target_id, ordering_key);
      DROP INDEX ${schema}.event_jobs_lane_idx;
      CREATE INDEX event_jobs_lane_idx ON ${schema}.event_jobs (instance_id, target_id, ordering_key, id);
      CREATE INDEX event_dead_jobs_instance_idx ON ${schema}.event_dead_jobs (instance_id, seq);
      -- Enqueues only add rows here; workers move them into event_jobs and
      -- their lanes (see event_queue_cycle). IDs come from the sequence of
      -- event_jobs, so a job keeps its ID when it moves.
      CREATE TABLE ${schema}.event_inbox (
        id bigint PRIMARY KEY DEFAULT nextval('${schema.replaceAll("'", "''")}.event_jobs_id_seq'::regclass),
        instance_id text NOT NULL,
        target_id text NOT NULL,
        ordering_key text NOT NULL,
        execution_id text NOT NULL,
        event_type text NOT NULL,
        body text NOT NULL,
        created_at timestamptz NOT NULL,
        timeout_ms integer NOT NULL CHECK (timeout_ms > 0),
        enqueued_at timestamptz NOT NULL DEFAULT now(),
        last_error text NOT NULL DEFAULT ''
      );
      -- One round trip of a worker: takes in enqueued jobs, settles claimed
      -- jobs, then claims more. Taking in (p_limit > 0): moves up to p_intake
      -- of the oldest rows of event_inbox into event_jobs and creates or locks
      -- their lanes, one intake at a time (an advisory lock), so that jobs
      -- join their lanes in the order of their IDs.
      -- Settling: p_kinds[i] is 'complete', 'retry' (due again at p_run_at[i])
      -- or 'give-up' (moved to the dead jobs, of which the latest p_max_dead
      -- are kept) for the job p_ids[i] claimed with lease p_leases[i]; one row
      -- per job says 'settled', 'stale' (no longer held by that lease) or
      -- 'busy' (its lane is locked by another transaction and p_wait is
      -- false). It locks the jobs' lanes first, in one statement, and changes
      -- them in the next, whose snapshot (taken after the locks were granted)
      -- sees every job enqueued into them by the transactions that held them
      -- before. Claiming (p_limit > 0): leases up to p_limit due lane heads,
      -- looking at the p_window oldest ready heads and the p_window longest
      -- due waiting ones (skipping the instances in p_skip), in turns per
      -- instance, at most p_caps[i] of instance p_cap_names[i] and
      -- p_default_cap of any other; one row per leased job. Claims and
      -- settlements commit asynchronously: a crash of the server may undo the
      -- last of them, which at worst delivers those jobs again (at least once).
      CREATE FUNCTION ${schema}.event_queue_cycle(
        p_ids bigint[], p_leases text[], p_kinds text[], p_run_at timestamptz[], p_errors text[],
        p_max_dead bigint, p_wait boolean,
        p_limit integer, p_grace_ms double precision, p_window integer, p_skip text[],
        p_cap_names text[], p_caps integer[], p_default_cap integer, p_intake integer
      ) RETURNS TABLE (
        o_settled_id bigint, o_outcome text,
        o_id bigint, o_instance_id text, o_target_id text, o_ordering_key text, o_execution_id text, o_event_type text,
        o_body text, o_created_at timestamptz, o_timeout_ms integer, o_enqueued_at timestamptz, o_attempts integer,
        o_lease text, o_last_error text
      )
      LANGUAGE plpgsql VOLATILE AS $fn$
      #variable_conflict use_column
      DECLARE
        v_locked bigint[];
        v_done bigint[];
        v_buried bigint;
      BEGIN
        -- The queue's tables change size faster than their statistics (an
        -- ANALYZE of an empty queue would plan sequential scans for a full
        -- one): every access here has an index, so use indexes only.
        PERFORM set_config('synchronous_commit', 'off', true), set_config('enable_seqscan', 'off', true),
          set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true);
        IF p_limit > 0 AND p_intake > 0 THEN
          -- Waits for an intake of another worker to commit, then sees its lanes.
          PERFORM pg_advisory_xact_lock(${lockClasses.eventIntake}, hashtext('${schema.replaceAll("'", "''")}'));
          WITH moved AS (
            DELETE FROM ${schema}.event_inbox WHERE id IN (
              SELECT id FROM ${schema}.event_inbox ORDER BY id LIMIT p_intake
            )
            RETURNING *
          ),
          inserted AS (
            INSERT INTO ${schema}.event_jobs (id, instance_id, target_id, ordering_key, execution_id, event_type, body,
              created_at, timeout_ms, enqueued_at, last_error)
            OVERRIDING SYSTEM VALUE
            SELECT id, instance_id, target_id, ordering_key, execution_id, event_type, body, created_at, timeout_ms,
              enqueued_at, last_error
            FROM moved ORDER BY id
            RETURNING id, instance_id, target_id, ordering_key
          )
          INSERT INTO ${schema}.event_lanes (instance_id, target_id, ordering_key, head_id)
          SELECT i.instance_id, i.target_id, i.ordering_key, min(i.id) FROM inserted i
          GROUP BY i.instance_id, i.target_id, i.ordering_key
          ORDER BY i.instance_id COLLATE "C", i.target_id COLLATE "C", i.ordering_key COLLATE "C"
          ON CONFLICT (instance_id, target_id, ordering_key) DO UPDATE SET head_id = event_lanes.head_id WHERE false;
        END IF;

        IF coalesce(cardinality(p_ids), 0) = 0 THEN
          -- Nothing to settle.
        ELSIF p_wait THEN
          SELECT array_agg(s.head_id) INTO v_locked FROM (
            SELECT l.head_id FROM ${schema}.event_lanes l
            JOIN ${schema}.event_jobs j
              ON j.id = l.head_id AND j.instance_id = l.instance_id AND j.target_id = l.target_id
                AND j.ordering_key = l.ordering_key
            WHERE j.id = ANY (p_ids)
            ORDER BY l.instance_id, l.target_id, l.ordering_key
            FOR UPDATE OF l
          ) s;
        ELSE
          SELECT array_agg(s.head_id) INTO v_locked FROM (
            SELECT l.head_id FROM ${schema}.event_lanes l
            JOIN ${schema}.event_jobs j
              ON j.id = l.head_id AND j.instance_id = l.instance_id AND j.target_id = l.target_id
                AND j.ordering_key = l.ordering_key
            WHERE j.id = ANY (p_ids)
            FOR UPDATE OF l SKIP LOCKED
          ) s;
        END IF;
        v_locked := coalesce(v_locked, '{}');

        IF cardinality(v_locked) > 0 THEN
        WITH input AS (
          SELECT * FROM unnest(p_ids, p_leases, p_kinds, p_run_at, p_errors) AS t(id, lease, kind, run_at, error)
          WHERE t.id = ANY (v_locked)
        ),
        retried AS (
          UPDATE ${schema}.event_jobs j SET lease = NULL, lease_until = NULL, last_error = i.error
          FROM input i
          WHERE i.kind = 'retry' AND j.id = i.id AND j.lease = i.lease AND j.lease_until > statement_timestamp()
          RETURNING j.id, j.instance_id, j.target_id, j.ordering_key, i.run_at
        ),
        lanes_retried AS (
          UPDATE ${schema}.event_lanes l SET available_at = r.run_at
          FROM retried r
          WHERE l.instance_id = r.instance_id AND l.target_id = r.target_id AND l.ordering_key = r.ordering_key
            AND l.head_id = r.id
        ),
        done AS (
          DELETE FROM ${schema}.event_jobs j USING input i
          WHERE i.kind <> 'retry' AND j.id = i.id AND j.lease = i.lease AND j.lease_until > statement_timestamp()
          RETURNING j.*, i.kind, i.error
        ),
        successors AS (
          SELECT d.instance_id, d.target_id, d.ordering_key, (
            SELECT n.id FROM ${schema}.event_jobs n
            WHERE n.instance_id = d.instance_id AND n.target_id = d.target_id AND n.ordering_key = d.ordering_key
              AND n.id > d.id
            ORDER BY n.id LIMIT 1
          ) AS next_id
          FROM done d
        ),
        promoted AS (
          UPDATE ${schema}.event_lanes l SET head_id = s.next_id, available_at = NULL
          FROM successors s
          WHERE s.next_id IS NOT NULL
            AND l.instance_id = s.instance_id AND l.target_id = s.target_id AND l.ordering_key = s.ordering_key
        ),
        emptied AS (
          DELETE FROM ${schema}.event_lanes l USING successors s
          WHERE s.next_id IS NULL
            AND l.instance_id = s.instance_id AND l.target_id = s.target_id AND l.ordering_key = s.ordering_key
        ),
        buried AS (
          INSERT INTO ${schema}.event_dead_jobs (id, instance_id, target_id, ordering_key, execution_id, event_type, body,
            created_at, timeout_ms, enqueued_at, attempts, error)
          SELECT id, instance_id, target_id, ordering_key, execution_id, event_type, body,
            created_at, timeout_ms, enqueued_at, attempts, error
          FROM done WHERE kind = 'give-up' AND p_max_dead > 0
          ORDER BY id
          RETURNING seq
        )
        SELECT (SELECT array_agg(r.id) FROM retried r) || (SELECT array_agg(d.id) FROM done d),
          (SELECT max(b.seq) FROM buried b)
        INTO v_done, v_buried;
        END IF;
        v_done := coalesce(v_done, '{}');

        IF v_buried IS NOT NULL THEN
          -- The dead jobs more than p_max_dead give-ups old go, skipping rows
          -- that a concurrent settlement is deleting.
          DELETE FROM ${schema}.event_dead_jobs WHERE seq IN (
            SELECT seq FROM ${schema}.event_dead_jobs WHERE seq <= v_buried - p_max_dead FOR UPDATE SKIP LOCKED
          );
        END IF;

        IF coalesce(cardinality(p_ids), 0) > 0 THEN
          RETURN QUERY
            SELECT t.id, CASE
              WHEN t.id = ANY (v_done) THEN 'settled'
              WHEN p_wait OR t.id = ANY (v_locked) THEN 'stale'
              WHEN EXISTS (
                SELECT 1 FROM ${schema}.event_jobs j
                WHERE j.id = t.id AND j.lease = t.lease AND j.lease_until > statement_timestamp()
              ) THEN 'busy'
              ELSE 'stale'
            END,
            NULL::bigint, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz,
            NULL::integer, NULL::timestamptz, NULL::integer, NULL::text, NULL::text
            FROM unnest(p_ids, p_leases) AS t(id, lease);
        END IF;

        IF p_limit > 0 THEN
          -- Due heads are those of ready lanes (available_at NULL), oldest
          -- first, and of lanes whose retry time has come, due longest first,
          -- whose job is not leased, or whose lease ran out. Each part is read
          -- in the order of its index, so a claim costs O(p_window) plus the
          -- heads leased now (all workers' deliveries in flight) plus the
          -- lanes of skipped instances, however many jobs wait. Of both parts,
          -- heads are picked in turns per instance; their jobs are locked,
          -- skipping those a concurrent claim holds or took meanwhile, and
          -- leased. A claim writes nothing to the lanes but those of retried
          -- heads, which become ready again.
          RETURN QUERY
            WITH ready AS (
              SELECT l.instance_id, l.target_id, l.ordering_key, l.head_id, false AS waited
              FROM ${schema}.event_lanes l JOIN ${schema}.event_jobs j ON j.id = l.head_id
              WHERE l.available_at IS NULL AND l.instance_id <> ALL (p_skip)
                AND (j.lease_until IS NULL OR j.lease_until <= now())
              ORDER BY l.head_id
              LIMIT p_window
            ),
            due AS (
              SELECT l.instance_id, l.target_id, l.ordering_key, l.head_id, true AS waited
              FROM ${schema}.event_lanes l JOIN ${schema}.event_jobs j ON j.id = l.head_id
              WHERE l.available_at <= now() AND l.instance_id <> ALL (p_skip)
                AND (j.lease_until IS NULL OR j.lease_until <= now())
              ORDER BY l.available_at, l.head_id
              LIMIT p_window
            ),
            candidates AS (
              SELECT c.*, row_number() OVER (PARTITION BY c.instance_id ORDER BY c.head_id) AS turn,
                coalesce(lim.cap, p_default_cap) AS cap
              FROM (SELECT * FROM ready UNION ALL SELECT * FROM due) c
              LEFT JOIN unnest(p_cap_names, p_caps) AS lim(instance_id, cap) ON lim.instance_id = c.instance_id
            ),
            picked AS (
              SELECT c.instance_id, c.target_id, c.ordering_key, c.head_id, c.waited FROM candidates c
              WHERE c.turn <= c.cap
              ORDER BY c.turn, c.head_id
              LIMIT p_limit
            ),
            locked AS (
              SELECT j.id FROM ${schema}.event_jobs j JOIN picked p ON j.id = p.head_id
              WHERE j.lease_until IS NULL OR j.lease_until <= now()
              FOR UPDATE OF j SKIP LOCKED
            ),
            leased AS (
              UPDATE ${schema}.event_jobs j
              SET attempts = j.attempts + 1,
                  lease = gen_random_uuid()::text,
                  lease_until = now() + make_interval(secs => (j.timeout_ms + p_grace_ms) / 1000)
              FROM locked k
              WHERE j.id = k.id
              RETURNING j.*
            ),
            unwaited AS (
              UPDATE ${schema}.event_lanes l SET available_at = NULL
              FROM picked p JOIN leased x ON x.id = p.head_id
              WHERE p.waited AND l.instance_id = p.instance_id AND l.target_id = p.target_id
                AND l.ordering_key = p.ordering_key AND l.head_id = p.head_id
            )
            SELECT NULL::bigint, NULL::text, x.id, x.instance_id::text, x.target_id::text, x.ordering_key::text,
              x.execution_id, x.event_type, x.body, x.created_at, x.timeout_ms, x.enqueued_at, x.attempts, x.lease,
              x.last_error
            FROM leased x ORDER BY x.id;
        END IF;
      END
      $fn$;
    `,
  },
  {
    version: 8,
    name: "delivery-log-excerpts",
    sql: (schema: string) => `
      ALTER TABLE ${schema}.delivery_log
        ADD COLUMN request_excerpt text,
        ADD COLUMN response_excerpt text,
        ADD COLUMN test boolean;
    `,
  },
]);

/**
 * MigrationTarget is what migrate runs on: a pool (a client is taken from it
 * for the duration) or a connected client that is not inside a transaction.
 */
export type MigrationTarget = pg.Pool | pg.ClientBase;

/**
 * migrate brings `schema` up to date: in one transaction, under a
 * transaction-scoped advisory lock on the schema's name (so replicas that
 * start at once wait for each other), it creates the schema and its
 * `migrations` table if needed, then applies the migrations of `migrations`
 * (default postgresMigrations) that are not recorded yet, in order. Either
 * all missing migrations are applied or none. Versions recorded in the
 * database that the list does not know (written by a newer release) are left
 * alone.
 *
 * Resolves the versions it applied, an empty list when the schema was
 * already current. Rejects with a ConnectError with Code.InvalidArgument for
 * a bad schema name or a malformed list, and Code.Internal when a migration
 * fails; errors of the connection itself are passed on as the driver throws
 * them.
 */
export async function migrate(
  target: MigrationTarget,
  schema: string,
  migrations: readonly PostgresMigration[] = postgresMigrations,
): Promise<number[]> {
  validateSchemaName(schema);
  validateMigrations(migrations);
  const quoted = pg.escapeIdentifier(schema);
  return inTransaction(target, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [migrationLockClass, schema]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoted}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${quoted}.migrations (
        version integer PRIMARY KEY,
        name text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`,
    );
    const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${quoted}.migrations`);
    const applied = new Set(rows.map((r) => Number(r.version)));
    const done: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await client.query(`SET LOCAL search_path TO ${quoted}`);
      try {
        await client.query(m.sql(quoted));
      } catch (error) {
        throw new ConnectError(
          `migration ${m.version} (${m.name}) of schema "${schema}" failed: ${error instanceof Error ? error.message : String(error)}`,
          Code.Internal,
          undefined,
          undefined,
          error,
        );
      }
      await client.query(`INSERT INTO ${quoted}.migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
      done.push(m.version);
    }
    return done;
  });
}

/**
 * migrationLockClass is the first key of the advisory lock migrate takes; the
 * second is the hash of the schema name.
 */
const migrationLockClass = lockClasses.migration;

/**
 * validateSchemaName throws a ConnectError with Code.InvalidArgument unless
 * `schema` is a usable PostgreSQL identifier: 1 to 63 bytes, no NUL.
 */
export function validateSchemaName(schema: string): void {
  if (typeof schema !== "string" || schema === "" || Buffer.byteLength(schema) > 63 || schema.includes("\0")) {
    throw new ConnectError(`invalid schema name "${String(schema)}": must be 1 to 63 bytes`, Code.InvalidArgument);
  }
}

function validateMigrations(migrations: readonly PostgresMigration[]): void {
  let previous = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version <= previous) {
      throw new ConnectError(
        `migration versions must be positive integers in strictly ascending order, got ${m.version} after ${previous}`,
        Code.InvalidArgument,
      );
    }
    previous = m.version;
  }
}
