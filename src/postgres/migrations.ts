import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { inTransaction } from "./transaction.js";

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
const migrationLockClass = 0x0ca_0001;

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
