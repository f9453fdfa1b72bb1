import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import {
  type ActionSnapshot,
  type ActionStore,
  defaultInstanceId,
  type InstanceStore,
  type StoreChange,
  validateInstanceId,
} from "../store/action-store.js";
import { type Condition, executionId, parseExecutionId, validateCondition } from "../condition.js";
import { checkIncludeGraph, type Execution, type ExecutionTarget, maxIncludeDepth, validateExecutionTargets } from "../execution.js";
import { newId } from "../id.js";
import { executionCapReached, type InstanceLimits, resolveInstanceLimits, targetCapReached } from "../store/instance-limits.js";
import { createJsonLogger, type Logger } from "../logger.js";
import { channelName, connectionSchema, openPool } from "./connection.js";
import { postgresErrorMapper } from "./errors.js";
import { createPostgresListener } from "./listener.js";
import { isStorableText, toDate } from "./values.js";
import { createWatchers } from "./watchers.js";
import {
  applyTargetPatch,
  generateSigningKey,
  type PayloadType,
  type Target,
  type TargetInput,
  type TargetPatch,
  type TargetType,
  validateTargetInput,
} from "../target.js";
import {
  isKeyUsable,
  maxPublicKeysPerTarget,
  type PublicKeyInput,
  type PublicKeyType,
  type TargetPublicKey,
  validatePublicKeyInput,
} from "../target-key.js";
import { lockClasses } from "./lock-classes.js";

/**
 * PostgresStoreOptions configures createPostgresStore. Set at most one of
 * `connectionString` and `pool`; with neither, the store connects with the
 * libpq environment variables (PGHOST, PGUSER, PGDATABASE, ...).
 */
export interface PostgresStoreOptions extends InstanceLimits {
  /**
   * Connection string of the database, for example
   * "postgres://user@host:5432/db". The store creates its own pool from it
   * (with a connection timeout of 10 s) and ends the pool on close.
   */
  readonly connectionString?: string;
  /**
   * Pool to run queries on. The store does not end it on close. The LISTEN
   * connection is a separate client created with the pool's options.
   */
  readonly pool?: pg.Pool;
  /** Schema of the store's tables, created if missing. Default "connect_actions". */
  readonly schema?: string;
  /**
   * LISTEN/NOTIFY channel through which store instances sharing the database
   * tell each other of changes. Default: the schema followed by "_changes",
   * for example "connect_actions_changes".
   */
  readonly channel?: string;
  /** Where the store logs lost connections and reconnects. Default createJsonLogger(). */
  readonly logger?: Logger;
  /** Clock of creation and change dates. Default `() => new Date()`. */
  readonly now?: () => Date;
}

/**
 * PostgresStore is an ActionStore kept in PostgreSQL, shared by every store
 * instance (every replica) using the same database and schema.
 */
export interface PostgresStore extends ActionStore {
  /** pool is the pool the store queries through, given or created. */
  readonly pool: pg.Pool;
  /** schema is the schema of the store's tables. */
  readonly schema: string;
  /** channel is the LISTEN/NOTIFY channel of change notifications. */
  readonly channel: string;
  /**
   * listenerPid returns the backend process ID of the LISTEN connection
   * (see pg_stat_activity), or undefined while it is reconnecting or after
   * close. For diagnostics.
   */
  listenerPid(): number | undefined;
}

/** First key of the advisory lock that serializes changes to the executions of one instance. */
const graphLockClass = lockClasses.executionGraph;
/**
 * First key of the advisory lock that serializes the creation (maxTargetsPerInstance) and the updates of the
 * targets of one instance: two renames that swap names would otherwise wait for each other's unique index
 * entry, a deadlock PostgreSQL breaks after a second.
 */
const targetsLockClass = lockClasses.targets;

/**
 * toConnectError turns an error of the driver into a ConnectError (see
 * postgresErrorMapper); text PostgreSQL cannot store (NUL characters) is
 * Code.InvalidArgument.
 */
const toConnectError = postgresErrorMapper("postgres store", (sqlState) => sqlState === "22021" || sqlState === "22P05");

interface TargetRow {
  id: string;
  instance_id: string;
  name: string;
  type: string;
  interrupt_on_error: boolean;
  endpoint: string;
  timeout_ms: number;
  signing_key: string;
  payload_type: string;
  creation_date: Date | string | number;
  change_date: Date | string | number;
  /** The active public key, null when there is none. */
  key_id: string | null;
  key_pem: string | null;
  key_expiration: Date | string | null;
}

interface PublicKeyRow {
  id: string;
  target_id: string;
  public_key: string;
  fingerprint: string;
  key_type: string;
  active: boolean;
  expiration_date: Date | string | null;
  creation_date: Date | string;
  change_date: Date | string;
}

interface ExecutionRow {
  id: string;
  targets: unknown;
  creation_date: Date | string | number;
  change_date: Date | string | number;
}

/**
 * createPostgresStore connects to PostgreSQL, brings the schema up to date
 * (see migrate) and starts listening for changes made by other store
 * instances. It resolves once the store is ready, and rejects with a
 * ConnectError (Code.InvalidArgument for bad options, Code.Unavailable when
 * the database cannot be reached) otherwise.
 *
 * Every row belongs to an instance (column instance_id). Every write is one
 * transaction. Writes to an instance's executions, and its target deletions,
 * are serialized by an advisory lock of that instance, so existence, include
 * cycle and depth checks cannot race, and instances never wait for each
 * other; the creations of an instance's targets take turns under a lock of
 * their own, so concurrent creations never exceed maxTargetsPerInstance. Watchers hear of this store's changes after COMMIT and before the
 * write's promise resolves, and of other stores' changes through NOTIFY
 * (which carries the instance and the changed IDs), typically within
 * milliseconds. When the LISTEN connection is lost, it reconnects with
 * backoff and then tells the watchers that any instance may have changed.
 */
export async function createPostgresStore(options: PostgresStoreOptions = {}): Promise<PostgresStore> {
  const schema = connectionSchema(options);
  const channel = channelName(options.channel, `${schema}_changes`);
  const logger = options.logger ?? createJsonLogger();
  const clock = options.now ?? (() => new Date());
  const { maxTargets, maxExecutions } = resolveInstanceLimits(options);
  const db = openPool(options, { component: "postgres store", schema, logger, mapError: toConnectError });
  const pool = db.pool;

  const q = pg.escapeIdentifier(schema);
  const source = randomUUID();
  const watchers = createWatchers<StoreChange>();
  let closed = false;
  let closing: Promise<void> | undefined;

  const open = () => {
    if (closed) throw new ConnectError("store is closed", Code.Unavailable);
  };
  const now = () => {
    const date = clock();
    // A copy, in whole milliseconds, so that what is stored is what is returned.
    return new Date(Math.trunc(date.getTime()));
  };

  /**
   * transaction runs `fn` in a transaction on a client of the pool: COMMIT
   * when it resolves, ROLLBACK when it throws. Errors become ConnectErrors.
   */
  const transaction = async <T>(fn: (client: pg.ClientBase) => Promise<T>, begin?: string): Promise<T> => {
    open();
    return db.transaction(fn, begin);
  };
  /**
   * notify announces a change to the other stores on the channel, at COMMIT.
   * A change whose IDs do not fit into one notification (at most 8000 bytes)
   * is announced in parts, each naming some of the IDs; one that would take
   * more than maxNotifyParts is announced without IDs, which makes the
   * receivers read the whole instance again.
   */
  const notify = (client: pg.ClientBase, change: StoreChange) => {
    const payloads = notifyPayloads(source, change);
    return client.query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", [channel, payloads]);
  };
  const read = async <R extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<R[]> => {
    open();
    return (await db.query<R>(text, values)).rows;
  };

  const targetColumns =
    "id, instance_id, name, type, interrupt_on_error, endpoint, timeout_ms, signing_key, payload_type, creation_date, change_date";
  // What reads select: dates as epoch milliseconds (parsed much faster than
  // timestamp text) and no condition for executions (the ID determines it):
  // plans read whole instances.
  const epochMs = (column: string, as: string) => `(extract(epoch FROM ${column}) * 1000)::float8 AS ${as}`;
  // Targets with their active public key; filter with "t." columns, order by t.seq, lock with FOR UPDATE OF t.
  const targetSelect = `SELECT t.id, t.instance_id, t.name, t.type, t.interrupt_on_error, t.endpoint, t.timeout_ms, t.signing_key,
      t.payload_type, ${epochMs("t.creation_date", "creation_date")}, ${epochMs("t.change_date", "change_date")},
      k.id AS key_id, k.public_key AS key_pem, k.expiration_date AS key_expiration
    FROM ${q}.targets t LEFT JOIN ${q}.target_public_keys k ON k.target_id = t.id AND k.active`;
  const keyColumns = "id, target_id, public_key, fingerprint, key_type, active, expiration_date, creation_date, change_date";
  const executionColumns = "id, condition, targets, creation_date, change_date";
  const executionSelect = `id, targets, ${epochMs("creation_date", "creation_date")}, ${epochMs("change_date", "change_date")}`;

  // --- one instance ------------------------------------------------------------

  const view = (instanceId: string): InstanceStore => {
    const lockGraph = (client: pg.ClientBase) =>
      client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [graphLockClass, `${schema}/${instanceId}`]);
    const setEntries = (client: pg.ClientBase, id: string, entries: readonly ExecutionTarget[], date: Date) =>
      client.query(`UPDATE ${q}.executions SET targets = $3::jsonb, change_date = $4 WHERE instance_id = $1 AND id = $2`, [
        instanceId,
        id,
        JSON.stringify(entries),
        date,
      ]);
    /**
     * readIncludeGraph reads the part of the instance's include graph that
     * checkIncludeGraph needs for execution `id` with the given includes: the
     * include lists of the included executions and of everything below them,
     * and the includers of `id` and of everything above it. Both walks follow
     * execution_refs and stop after maxIncludeDepth + 1 levels, so the read is
     * bounded by the graph around `id`, not by the size of the instance.
     * Includes of missing executions are not in `lists`.
     */
    const readIncludeGraph = async (client: pg.ClientBase, id: string, includes: readonly string[]) => {
      const { rows } = await client.query<{ dir: "down" | "up"; a: string; b: string | null }>(
        `WITH RECURSIVE
           down (id, depth) AS (
             SELECT id, 1 FROM ${q}.executions WHERE instance_id = $1 AND id = ANY($3::text[])
             UNION
             SELECT r.ref_id, d.depth + 1 FROM down d
               JOIN ${q}.execution_refs r ON r.instance_id = $1 AND r.execution_id = d.id AND r.kind = 'include'
             WHERE d.depth <= $4
           ),
           up (id, depth) AS (
             SELECT $2::text COLLATE "C", 0
             UNION
             SELECT r.execution_id, u.depth + 1 FROM up u
               JOIN ${q}.execution_refs r ON r.instance_id = $1 AND r.ref_id = u.id AND r.kind = 'include'
             WHERE u.depth <= $4
           )
         SELECT 'down' AS dir, d.id AS a, r.ref_id AS b
           FROM (SELECT DISTINCT id FROM down) d
           LEFT JOIN ${q}.execution_refs r ON r.instance_id = $1 AND r.execution_id = d.id AND r.kind = 'include'
         UNION ALL
         SELECT 'up', r.ref_id, r.execution_id
           FROM (SELECT DISTINCT id FROM up) u
           JOIN ${q}.execution_refs r ON r.instance_id = $1 AND r.ref_id = u.id AND r.kind = 'include'`,
        [instanceId, id, includes, maxIncludeDepth],
      );
      const lists = new Map<string, ExecutionTarget[]>();
      const includers = new Map<string, string[]>();
      for (const row of rows) {
        if (row.dir === "down") {
          let list = lists.get(row.a);
          if (list === undefined) lists.set(row.a, (list = []));
          if (row.b !== null) list.push({ include: row.b });
        } else {
          const parents = includers.get(row.a);
          if (parents === undefined) includers.set(row.a, [row.b!]);
          else parents.push(row.b!);
        }
      }
      return { lists, includers };
    };
    /**
     * dropExecution deletes an execution and removes the includes of it from
     * other executions, each read when it is changed; one left with no
     * entries is dropped the same way. Every execution it changes or removes
     * is added to `touched`. Runs inside the caller's transaction, under the
     * graph lock.
     */
    const dropExecution = async (client: pg.ClientBase, id: string, date: Date, touched: Set<string>): Promise<void> => {
      const pending = [id];
      for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
        await client.query(`DELETE FROM ${q}.executions WHERE instance_id = $1 AND id = $2`, [instanceId, next]);
        touched.add(next);
        const { rows } = await client.query<{ id: string; targets: unknown }>(
          `SELECT e.id, e.targets FROM ${q}.execution_refs r
             JOIN ${q}.executions e ON e.instance_id = r.instance_id AND e.id = r.execution_id
           WHERE r.instance_id = $1 AND r.ref_id = $2 AND r.kind = 'include'`,
          [instanceId, next],
        );
        for (const row of rows) {
          const gone = next;
          const rest = entriesFromJson(row.targets).filter((t) => !("include" in t && t.include === gone));
          touched.add(row.id);
          if (rest.length === 0) pending.push(row.id);
          else await setEntries(client, row.id, rest, date);
        }
      }
    };

    /** lockTarget locks a target of this instance against changes of its keys, or throws Code.NotFound. */
    const lockTarget = async (client: pg.ClientBase, targetId: string) => {
      const { rowCount } = await client.query(`SELECT 1 FROM ${q}.targets WHERE instance_id = $1 AND id = $2 FOR UPDATE`, [
        instanceId,
        targetId,
      ]);
      if (rowCount !== 1) throw targetNotFound(targetId);
    };
    /** lockKey locks a target of this instance and returns one of its keys, or throws Code.NotFound. */
    const lockKey = async (client: pg.ClientBase, targetId: string, keyId: string): Promise<PublicKeyRow> => {
      if (!storableId(targetId)) throw targetNotFound(targetId);
      await lockTarget(client, targetId);
      const { rows } = await client.query<PublicKeyRow>(
        storableId(keyId) ? `SELECT ${keyColumns} FROM ${q}.target_public_keys WHERE target_id = $1 AND id = $2` : "SELECT NULL WHERE false",
        storableId(keyId) ? [targetId, keyId] : [],
      );
      if (rows[0] === undefined) throw new ConnectError(`public key "${String(keyId)}" of target "${targetId}" not found`, Code.NotFound);
      return rows[0];
    };

    return {
      instanceId,

      async createTarget(input: TargetInput) {
        open();
        const fields = validateTargetInput(input);
        const target = await transaction(async (client) => {
          if (maxTargets !== Infinity) {
            // Creations in one instance take turns, so each counts what the previous one committed.
            await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [targetsLockClass, `${schema}/${instanceId}`]);
            const { rows } = await client.query<{ n: number }>(
              `SELECT count(*)::integer AS n FROM ${q}.targets WHERE instance_id = $1`,
              [instanceId],
            );
            if (Number(rows[0]?.n ?? 0) >= maxTargets) throw targetCapReached(instanceId, maxTargets);
          }
          for (;;) {
            const date = now();
            const candidate: Target = Object.freeze({
              id: newId(),
              instanceId,
              ...fields,
              signingKey: generateSigningKey(),
              creationDate: date,
              changeDate: date,
            });
            let inserted: number | null;
            try {
              inserted = (
                await client.query(
                  `INSERT INTO ${q}.targets (${targetColumns}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
                   ON CONFLICT (id) DO NOTHING`,
                  [
                    candidate.id,
                    instanceId,
                    candidate.name,
                    candidate.type,
                    candidate.interruptOnError,
                    candidate.endpoint,
                    candidate.timeoutMs,
                    candidate.signingKey,
                    candidate.payloadType,
                    date,
                  ],
                )
              ).rowCount;
            } catch (error) {
              throw nameTaken(error, fields.name);
            }
            // Zero rows: another process generated the same ID; draw a new one.
            if (inserted === 1) {
              await notify(client, { instanceId, targetIds: [candidate.id], executionIds: [] });
              return candidate;
            }
          }
        });
        watchers.notify({ instanceId, targetIds: [target.id], executionIds: [] });
        return target;
      },

      async updateTarget(id: string, patch: TargetPatch) {
        open();
        if (!storableId(id)) throw new ConnectError(`target "${String(id)}" not found`, Code.NotFound);
        const next = await transaction(async (client) => {
          await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [targetsLockClass, `${schema}/${instanceId}`]);
          const { rows } = await client.query<TargetRow>(`${targetSelect} WHERE t.instance_id = $1 AND t.id = $2 FOR UPDATE OF t`, [
            instanceId,
            id,
          ]);
          const row = rows[0];
          if (row === undefined) {
            throw new ConnectError(`target "${id}" not found`, Code.NotFound);
          }
          const updated = Object.freeze(applyTargetPatch(targetFromRow(row), patch, now()));
          try {
            await client.query(
              `UPDATE ${q}.targets SET name = $2, type = $3, interrupt_on_error = $4, endpoint = $5, timeout_ms = $6,
                 signing_key = $7, payload_type = $8, change_date = $9
               WHERE id = $1`,
              [
                id,
                updated.name,
                updated.type,
                updated.interruptOnError,
                updated.endpoint,
                updated.timeoutMs,
                updated.signingKey,
                updated.payloadType,
                updated.changeDate,
              ],
            );
          } catch (error) {
            throw nameTaken(error, updated.name);
          }
          await notify(client, { instanceId, targetIds: [id], executionIds: [] });
          return updated;
        });
        watchers.notify({ instanceId, targetIds: [id], executionIds: [] });
        return next;
      },

      async deleteTarget(id: string) {
        open();
        if (!storableId(id)) return false;
        const change = await transaction(async (client): Promise<StoreChange | undefined> => {
          await lockGraph(client);
          const removed = await client.query(`DELETE FROM ${q}.targets WHERE instance_id = $1 AND id = $2`, [instanceId, id]);
          if (removed.rowCount !== 1) return undefined;
          const date = now();
          const touched = new Set<string>();
          // One execution at a time, each read afresh: a cascade may change or remove the next.
          for (;;) {
            const { rows } = await client.query<{ id: string; targets: unknown }>(
              `SELECT e.id, e.targets FROM ${q}.execution_refs r
                 JOIN ${q}.executions e ON e.instance_id = r.instance_id AND e.id = r.execution_id
               WHERE r.instance_id = $1 AND r.ref_id = $2 AND r.kind = 'target' LIMIT 1`,
              [instanceId, id],
            );
            const row = rows[0];
            if (row === undefined) break;
            const rest = entriesFromJson(row.targets).filter((t) => !("target" in t && t.target === id));
            touched.add(row.id);
            if (rest.length === 0) await dropExecution(client, row.id, date, touched);
            else await setEntries(client, row.id, rest, date);
          }
          const done: StoreChange = { instanceId, targetIds: [id], executionIds: [...touched] };
          await notify(client, done);
          return done;
        });
        if (change === undefined) return false;
        watchers.notify(change);
        return true;
      },

      async getTarget(id: string) {
        open();
        if (!storableId(id)) return undefined;
        const rows = await read<TargetRow>(`${targetSelect} WHERE t.instance_id = $1 AND t.id = $2`, [instanceId, id]);
        return rows[0] === undefined ? undefined : targetFromRow(rows[0]);
      },

      async listTargets() {
        const rows = await read<TargetRow>(`${targetSelect} WHERE t.instance_id = $1 ORDER BY t.seq`, [instanceId]);
        return rows.map(targetFromRow);
      },

      async addPublicKey(targetId: string, input: PublicKeyInput) {
        open();
        const fields = validatePublicKeyInput(input, now());
        if (!storableId(targetId)) throw targetNotFound(targetId);
        return transaction(async (client) => {
          await lockTarget(client, targetId);
          const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${q}.target_public_keys WHERE target_id = $1`, [
            targetId,
          ]);
          if (Number(rows[0]?.n ?? 0) >= maxPublicKeysPerTarget) {
            throw new ConnectError(
              `target "${targetId}" has ${maxPublicKeysPerTarget} public keys already; remove one first`,
              Code.ResourceExhausted,
            );
          }
          for (;;) {
            const date = now();
            const inserted = await client.query<PublicKeyRow>(
              `INSERT INTO ${q}.target_public_keys (id, instance_id, target_id, public_key, fingerprint, key_type, active,
                 expiration_date, creation_date, change_date)
               VALUES ($1, $2, $3, $4, $5, $6, false, $7, $8, $8)
               ON CONFLICT (id) DO NOTHING RETURNING ${keyColumns}`,
              [newId(), instanceId, targetId, fields.pem, fields.fingerprint, fields.keyType, fields.expirationDate ?? null, date],
            );
            // No row: another process generated the same ID; draw a new one.
            if (inserted.rows[0] !== undefined) return publicKeyFromRow(inserted.rows[0], date);
          }
        });
      },

      async activatePublicKey(targetId: string, keyId: string) {
        open();
        const result = await transaction(async (client) => {
          const key = await lockKey(client, targetId, keyId);
          const date = now();
          const expiration = key.expiration_date === null ? undefined : toDate(key.expiration_date);
          if (!isKeyUsable(expiration, date)) {
            throw new ConnectError(`public key "${keyId}" of target "${targetId}" has expired`, Code.FailedPrecondition);
          }
          if (key.active) return { key: publicKeyFromRow(key, date), changed: false };
          await client.query(`UPDATE ${q}.target_public_keys SET active = false, change_date = $2 WHERE target_id = $1 AND active`, [
            targetId,
            date,
          ]);
          const { rows } = await client.query<PublicKeyRow>(
            `UPDATE ${q}.target_public_keys SET active = true, change_date = $2 WHERE id = $1 RETURNING ${keyColumns}`,
            [keyId, date],
          );
          await notify(client, { instanceId, targetIds: [targetId], executionIds: [] });
          return { key: publicKeyFromRow(rows[0]!, date), changed: true };
        });
        if (result.changed) watchers.notify({ instanceId, targetIds: [targetId], executionIds: [] });
        return result.key;
      },

      async deactivatePublicKey(targetId: string, keyId: string) {
        open();
        const result = await transaction(async (client) => {
          const key = await lockKey(client, targetId, keyId);
          const date = now();
          if (!key.active) return { key: publicKeyFromRow(key, date), changed: false };
          const { rows } = await client.query<PublicKeyRow>(
            `UPDATE ${q}.target_public_keys SET active = false, change_date = $2 WHERE id = $1 RETURNING ${keyColumns}`,
            [keyId, date],
          );
          await notify(client, { instanceId, targetIds: [targetId], executionIds: [] });
          return { key: publicKeyFromRow(rows[0]!, date), changed: true };
        });
        if (result.changed) watchers.notify({ instanceId, targetIds: [targetId], executionIds: [] });
        return result.key;
      },

      async removePublicKey(targetId: string, keyId: string) {
        open();
        if (!storableId(targetId) || !storableId(keyId)) return false;
        const result = await transaction(async (client) => {
          const { rows } = await client.query<PublicKeyRow>(
            `SELECT ${keyColumns.split(", ").map((c) => `k.${c}`).join(", ")}
             FROM ${q}.targets t JOIN ${q}.target_public_keys k ON k.target_id = t.id
             WHERE t.instance_id = $1 AND t.id = $2 AND k.id = $3 FOR UPDATE OF t, k`,
            [instanceId, targetId, keyId],
          );
          const key = rows[0];
          if (key === undefined) return { removed: false, changed: false };
          const expiration = key.expiration_date === null ? undefined : toDate(key.expiration_date);
          if (key.active && isKeyUsable(expiration, now())) {
            throw new ConnectError(
              `public key "${keyId}" is the active key of target "${targetId}": deactivate it before removing it`,
              Code.FailedPrecondition,
            );
          }
          await client.query(`DELETE FROM ${q}.target_public_keys WHERE id = $1`, [keyId]);
          if (key.active) await notify(client, { instanceId, targetIds: [targetId], executionIds: [] });
          return { removed: true, changed: key.active };
        });
        if (result.changed) watchers.notify({ instanceId, targetIds: [targetId], executionIds: [] });
        return result.removed;
      },

      async listPublicKeys(targetId: string) {
        open();
        if (!storableId(targetId)) return [];
        const rows = await read<PublicKeyRow>(
          `SELECT ${keyColumns.split(", ").map((c) => `k.${c}`).join(", ")}
           FROM ${q}.targets t JOIN ${q}.target_public_keys k ON k.target_id = t.id
           WHERE t.instance_id = $1 AND t.id = $2 ORDER BY k.seq`,
          [instanceId, targetId],
        );
        const date = now();
        return rows.map((row) => publicKeyFromRow(row, date));
      },

      async setExecution(condition: Condition, list: readonly ExecutionTarget[]) {
        open();
        const normalized = validateCondition(condition);
        const id = executionId(normalized);
        const entries = validateExecutionTargets(id, list);
        const result = await transaction(async (client) => {
          await lockGraph(client);
          const { rows: currentRows } = await client.query<{ creation_date: Date | string }>(
            `SELECT creation_date FROM ${q}.executions WHERE instance_id = $1 AND id = $2`,
            [instanceId, id],
          );
          const current = currentRows[0];
          if (entries.length === 0) {
            if (current === undefined) return { change: undefined, execution: undefined };
            const touched = new Set<string>();
            await dropExecution(client, id, now(), touched);
            const change: StoreChange = { instanceId, targetIds: [], executionIds: [...touched] };
            await notify(client, change);
            return { change, execution: undefined };
          }
          const targetIds = entries.flatMap((e) => ("target" in e ? [e.target] : []));
          if (targetIds.length > 0) {
            const { rows } = await client.query<{ id: string }>(
              `SELECT id FROM ${q}.targets WHERE instance_id = $1 AND id = ANY($2::text[])`,
              [instanceId, targetIds.filter(storableId)],
            );
            const found = new Set(rows.map((r) => r.id));
            const missing = targetIds.find((t) => !found.has(t));
            if (missing !== undefined) {
              throw new ConnectError(`target "${missing}" not found`, Code.NotFound);
            }
          }
          const includes = entries.flatMap((e) => ("include" in e ? [e.include] : []));
          if (includes.length > 0) {
            // Without includes the list cannot close a cycle or deepen a chain
            // (the stored chains through it are at most maxIncludeDepth long).
            const graph = await readIncludeGraph(client, id, includes.filter(storableId));
            checkIncludeGraph(
              id,
              entries,
              (x) => graph.lists.get(x),
              (x) => graph.includers.get(x) ?? [],
            );
          }
          if (current === undefined && maxExecutions !== Infinity) {
            // Under the graph lock: writes of this instance's executions take turns.
            const { rows } = await client.query<{ n: number }>(
              `SELECT count(*)::integer AS n FROM ${q}.executions WHERE instance_id = $1`,
              [instanceId],
            );
            if (Number(rows[0]?.n ?? 0) >= maxExecutions) throw executionCapReached(instanceId, maxExecutions);
          }
          const date = now();
          const execution = freezeExecution({
            id,
            condition: normalized,
            targets: entries,
            creationDate: current === undefined ? date : toDate(current.creation_date),
            changeDate: date,
          });
          await client.query(
            `INSERT INTO ${q}.executions (instance_id, ${executionColumns}) VALUES ($1, $2, $3::jsonb, $4::jsonb, $5, $6)
             ON CONFLICT (instance_id, id) DO UPDATE SET condition = EXCLUDED.condition, targets = EXCLUDED.targets,
               change_date = EXCLUDED.change_date`,
            [instanceId, id, JSON.stringify(normalized), JSON.stringify(entries), execution.creationDate, date],
          );
          const change: StoreChange = { instanceId, targetIds: [], executionIds: [id] };
          await notify(client, change);
          return { change, execution };
        });
        if (result.change !== undefined) watchers.notify(result.change);
        return result.execution;
      },

      async getExecution(id: string) {
        open();
        if (!storableId(id)) return undefined;
        const rows = await read<ExecutionRow>(
          `SELECT ${executionSelect} FROM ${q}.executions WHERE instance_id = $1 AND id = $2`,
          [instanceId, id],
        );
        return rows[0] === undefined ? undefined : executionFromRow(rows[0]);
      },

      async listExecutions() {
        const rows = await read<ExecutionRow>(
          `SELECT ${executionSelect} FROM ${q}.executions WHERE instance_id = $1 ORDER BY id`,
          [instanceId],
        );
        return rows.map(executionFromRow);
      },

      async snapshot(): Promise<ActionSnapshot> {
        return transaction(async (client) => {
          const targets = await client.query<TargetRow>(`${targetSelect} WHERE t.instance_id = $1 ORDER BY t.seq`, [instanceId]);
          const executions = await client.query<ExecutionRow>(
            `SELECT ${executionSelect} FROM ${q}.executions WHERE instance_id = $1 ORDER BY id`,
            [instanceId],
          );
          return { targets: targets.rows.map(targetFromRow), executions: executions.rows.map(executionFromRow) };
        }, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
      },

      async load(ids) {
        const targetIds = (ids.targetIds ?? []).filter(storableId);
        const executionIds = (ids.executionIds ?? []).filter(storableId);
        if (targetIds.length === 0 && executionIds.length === 0) {
          open();
          return { targets: [], executions: [] };
        }
        const targetQuery = `${targetSelect} WHERE t.instance_id = $1 AND t.id = ANY($2::text[]) ORDER BY t.seq`;
        const executionQuery = `SELECT ${executionSelect} FROM ${q}.executions WHERE instance_id = $1 AND id = ANY($2::text[]) ORDER BY id`;
        // One statement sees one moment by itself; two need a transaction.
        if (executionIds.length === 0) {
          return { targets: (await read<TargetRow>(targetQuery, [instanceId, targetIds])).map(targetFromRow), executions: [] };
        }
        if (targetIds.length === 0) {
          return { targets: [], executions: (await read<ExecutionRow>(executionQuery, [instanceId, executionIds])).map(executionFromRow) };
        }
        return transaction(async (client) => {
          const targets = (await client.query<TargetRow>(targetQuery, [instanceId, targetIds])).rows.map(targetFromRow);
          const executions = (await client.query<ExecutionRow>(executionQuery, [instanceId, executionIds])).rows.map(executionFromRow);
          return { targets, executions };
        }, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
      },
    };
  };

  // --- start -----------------------------------------------------------------

  const onNotify = (message: string | undefined) => {
    let parsed: { source?: unknown; instanceId?: unknown; targetIds?: unknown; executionIds?: unknown } | undefined;
    try {
      parsed = JSON.parse(message ?? "") as typeof parsed;
    } catch {
      // Not ours to parse: treat it as a change made elsewhere, anywhere.
    }
    if (parsed?.source === source) return; // our watchers heard of it already
    const instanceId = typeof parsed?.instanceId === "string" ? parsed.instanceId : undefined;
    const idList = (value: unknown): string[] | undefined =>
      Array.isArray(value) && value.every((v) => typeof v === "string") ? (value as string[]) : undefined;
    const targetIds = instanceId === undefined ? undefined : idList(parsed?.targetIds);
    const executionIds = instanceId === undefined ? undefined : idList(parsed?.executionIds);
    watchers.notify(
      targetIds === undefined || executionIds === undefined ? { instanceId } : { instanceId, targetIds, executionIds },
    );
  };
  const channelListener = await db.prepare(() =>
    createPostgresListener({
      pool,
      channel,
      logger,
      component: "postgres store",
      logAttributes: { schema, channel },
      onNotify,
      // Changes made while the connection is down are not announced: plans
      // cannot trust what they hold from the moment it is lost until it is back.
      onLost: () => watchers.notify({ instanceId: undefined }),
      onReconnect: () => watchers.notify({ instanceId: undefined }),
    }),
  );

  // --- the store -------------------------------------------------------------

  const forInstance = (instanceId: string): InstanceStore => view(validateInstanceId(instanceId));
  return {
    ...forInstance(defaultInstanceId),
    forInstance,
    pool,
    schema,
    channel,

    listenerPid() {
      return channelListener.pid();
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

/** maxNotifyBytes is the largest NOTIFY payload sent; PostgreSQL's limit is 8000 bytes. */
const maxNotifyBytes = 7900;
/** maxNotifyParts is the most notifications one change is split into before its IDs are left out. */
const maxNotifyParts = 16;

/**
 * notifyPayloads returns the NOTIFY payloads that announce `change`: one
 * when it fits into maxNotifyBytes, else parts that each name some of its
 * target and execution IDs (every part names the instance, and the receivers
 * apply each as a change of its own), else, beyond maxNotifyParts, one that
 * names the instance only.
 */
export function notifyPayloads(source: string, change: StoreChange): string[] {
  const whole = JSON.stringify({ source, ...change });
  if (Buffer.byteLength(whole) <= maxNotifyBytes || change.instanceId === undefined) return [whole];
  const bare = JSON.stringify({ source, instanceId: change.instanceId });
  const ids = [
    ...(change.targetIds ?? []).map((id) => ["t", id] as const),
    ...(change.executionIds ?? []).map((id) => ["e", id] as const),
  ];
  const parts: string[] = [];
  let targetIds: string[] = [];
  let executionIds: string[] = [];
  // Each ID costs its JSON text and a comma; the frame leaves room for both lists.
  const frame = Buffer.byteLength(JSON.stringify({ source, instanceId: change.instanceId, targetIds: [], executionIds: [] }));
  let size = frame;
  const flush = () => {
    parts.push(JSON.stringify({ source, instanceId: change.instanceId, targetIds, executionIds }));
    targetIds = [];
    executionIds = [];
    size = frame;
  };
  for (const [kind, id] of ids) {
    const cost = Buffer.byteLength(JSON.stringify(id)) + 1;
    if (frame + cost > maxNotifyBytes) return [bare];
    if (size + cost > maxNotifyBytes) flush();
    (kind === "t" ? targetIds : executionIds).push(id);
    size += cost;
  }
  flush();
  return parts.length > maxNotifyParts ? [bare] : parts;
}

/**
 * storableId tells whether `id` can be the ID of a stored row (see
 * isStorableText): as in the memory store, looking other IDs up finds nothing.
 */
const storableId = isStorableText;

/** targetNotFound is the error of an unknown target: Code.NotFound. */
function targetNotFound(id: string): ConnectError {
  return new ConnectError(`target "${String(id)}" not found`, Code.NotFound);
}

/**
 * nameTaken turns a unique violation of the target name into
 * Code.AlreadyExists, and returns other errors unchanged.
 */
function nameTaken(error: unknown, name: string): unknown {
  if (error instanceof pg.DatabaseError && error.code === "23505" && error.constraint === "targets_instance_name_key") {
    return new ConnectError(`a target named "${name}" already exists`, Code.AlreadyExists, undefined, undefined, error);
  }
  return error;
}

function parseJson(value: unknown): unknown {
  return typeof value === "string" ? JSON.parse(value) : value;
}

function entriesFromJson(value: unknown): ExecutionTarget[] {
  const list = parseJson(value);
  if (!Array.isArray(list)) return [];
  return list.map((e: { target?: unknown; include?: unknown }) =>
    Object.freeze(typeof e.target === "string" ? { target: e.target } : { include: String(e.include) }),
  );
}

function targetFromRow(row: TargetRow): Target {
  return Object.freeze({
    id: row.id,
    instanceId: row.instance_id,
    name: row.name,
    type: row.type as TargetType,
    interruptOnError: row.interrupt_on_error,
    endpoint: row.endpoint,
    timeoutMs: Number(row.timeout_ms),
    signingKey: row.signing_key,
    payloadType: row.payload_type as PayloadType,
    ...(row.key_id === null || row.key_pem === null
      ? {}
      : {
          encryptionKey: Object.freeze({
            keyId: row.key_id,
            publicKey: row.key_pem,
            ...(row.key_expiration === null ? {} : { expirationDate: toDate(row.key_expiration) }),
          }),
        }),
    creationDate: toDate(row.creation_date),
    changeDate: toDate(row.change_date),
  });
}

/** publicKeyFromRow returns the record of a key row, `active` as of `now`. */
function publicKeyFromRow(row: PublicKeyRow, now: Date): TargetPublicKey {
  const expirationDate = row.expiration_date === null ? undefined : toDate(row.expiration_date);
  return Object.freeze({
    keyId: row.id,
    targetId: row.target_id,
    publicKey: row.public_key,
    fingerprint: row.fingerprint,
    keyType: row.key_type as PublicKeyType,
    active: row.active && isKeyUsable(expirationDate, now),
    ...(expirationDate === undefined ? {} : { expirationDate }),
    creationDate: toDate(row.creation_date),
    changeDate: toDate(row.change_date),
  });
}

function executionFromRow(row: ExecutionRow): Execution {
  return Object.freeze({
    id: row.id,
    // The ID is made from the validated condition and gives it back (with a canonical key order).
    condition: Object.freeze(parseExecutionId(row.id)),
    targets: Object.freeze(entriesFromJson(row.targets)),
    creationDate: toDate(row.creation_date),
    changeDate: toDate(row.change_date),
  });
}

function freezeExecution(e: Execution): Execution {
  return Object.freeze({
    ...e,
    condition: Object.freeze({ ...e.condition }),
    targets: Object.freeze(e.targets.map((t) => Object.freeze({ ...t }))),
  });
}
