import { createPrivateKey } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import {
  activeKeyOf,
  needsNextKey,
  type PublicJwk,
  resolveLifetimes,
  type SigningAlgorithm,
  type SigningKey,
  type SigningKeyLifetimes,
  type SigningKeySource,
  newSigningKey,
} from "../keys/signing-key-source.js";
import { createJsonLogger, type Logger } from "../logger.js";
import { validateInstanceId } from "../store/action-store.js";
import { connectionSchema, openPool, type PostgresConnectionOptions } from "./connection.js";
import { postgresErrorMapper } from "./errors.js";
import { toDate } from "./values.js";
import { lockClasses } from "./lock-classes.js";

/**
 * PostgresSigningKeySourceOptions configures createPostgresSigningKeySource:
 * where the keys live (see PostgresConnectionOptions; table `signing_keys`
 * of the schema, created by migrate), how long they live, and how long a
 * replica keeps using the active key it read.
 */
export interface PostgresSigningKeySourceOptions extends PostgresConnectionOptions, SigningKeyLifetimes {
  /**
   * How long the active key read from the database is used before it is
   * read again, in milliseconds: default 60 000. A rotation made by another
   * replica reaches this one within that time (the key it replaced is still
   * published, so what this replica signs meanwhile can be verified).
   */
  readonly cacheMs?: number;
  /** Where a created pool logs idle connection failures. Default createJsonLogger(). */
  readonly logger?: Logger;
  /** Clock, default `() => new Date()`. */
  readonly now?: () => Date;
}

/**
 * PostgresSigningKeySource is a SigningKeySource kept in PostgreSQL, shared
 * by every replica using the same database and schema.
 */
export interface PostgresSigningKeySource extends SigningKeySource {
  /** pool is the pool the source queries through, given or created. */
  readonly pool: pg.Pool;
  /** schema is the schema of the `signing_keys` table. */
  readonly schema: string;
}

interface SigningKeyRow {
  id: string;
  instance_id: string;
  algorithm: string;
  private_key: string;
  public_jwk: unknown;
  creation_date: Date | string;
  signs_from: Date | string;
  signs_until: Date | string;
  expires_at: Date | string;
}

/** First key of the advisory lock that serializes key generation for one instance. */
const keyLockClass = lockClasses.signingKeys;

const toConnectError = postgresErrorMapper("postgres signing keys", (sqlState) => sqlState === "22021" || sqlState === "22P05");

/**
 * createPostgresSigningKeySource connects to PostgreSQL, brings the schema up
 * to date (see migrate) and resolves a SigningKeySource whose keys every
 * replica shares: the first replica that needs a key generates it (under an
 * advisory lock of the instance, so replicas never generate two at once),
 * and every replica's JWKS publishes the same keys. Private keys are stored
 * as PKCS #8 PEM, unencrypted: restrict access to the table. Keys whose
 * published lifetime is over are deleted when the instance's next key is
 * generated. Rejects with a ConnectError (Code.InvalidArgument for bad
 * options, Code.Unavailable when the database cannot be reached).
 */
export async function createPostgresSigningKeySource(options: PostgresSigningKeySourceOptions = {}): Promise<PostgresSigningKeySource> {
  const schema = connectionSchema(options);
  const lifetimes = resolveLifetimes(options);
  const cacheMs = options.cacheMs ?? 60_000;
  if (typeof cacheMs !== "number" || !Number.isFinite(cacheMs) || cacheMs < 0) {
    throw new ConnectError("cacheMs must be a number of milliseconds, 0 or more", Code.InvalidArgument);
  }
  const logger = options.logger ?? createJsonLogger();
  const clock = options.now ?? (() => new Date());
  const now = () => new Date(Math.trunc(clock().getTime()));
  const db = openPool(options, { component: "postgres signing keys", schema, logger, mapError: toConnectError });
  const q = pg.escapeIdentifier(schema);
  const columns = "id, instance_id, algorithm, private_key, public_jwk, creation_date, signs_from, signs_until, expires_at";
  /** The active key of each instance as read, and until when it may be used without reading again. */
  const cache = new Map<string, { key: SigningKey; until: number }>();
  const loading = new Map<string, Promise<SigningKey>>();
  let closed = false;

  const open = () => {
    if (closed) throw new ConnectError("signing key source is closed", Code.Unavailable);
  };
  const remember = (key: SigningKey) => {
    cache.set(key.instanceId, { key, until: Math.min(key.signsUntil.getTime(), now().getTime() + cacheMs) });
    return key;
  };
  const insert = async (client: pg.ClientBase, key: SigningKey) => {
    await client.query(
      `INSERT INTO ${q}.signing_keys (${columns}) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8, $9)`,
      [
        key.keyId,
        key.instanceId,
        key.algorithm,
        key.privateKey.export({ type: "pkcs8", format: "pem" }),
        JSON.stringify(key.publicJwk),
        key.creationDate,
        key.signsFrom,
        key.signsUntil,
        key.expiresAt,
      ],
    );
  };
  /** keysOf reads the instance's keys that have not expired. */
  const keysOf = async (client: pg.ClientBase | undefined, instanceId: string, date: Date): Promise<SigningKey[]> => {
    const text = `SELECT ${columns} FROM ${q}.signing_keys WHERE instance_id = $1 AND expires_at > $2 ORDER BY creation_date DESC, id DESC`;
    const rows = client === undefined ? (await db.query<SigningKeyRow>(text, [instanceId, date])).rows : (await client.query<SigningKeyRow>(text, [instanceId, date])).rows;
    return rows.map(keyFromRow);
  };
  /**
   * generate runs `decide` in a transaction under the instance's lock, with
   * the instance's keys as of then (another replica may have added one while
   * this one waited): it returns a key to keep, or "new" with when the new
   * key starts signing. Expired keys are deleted on the way.
   */
  const generate = (instanceId: string, decide: (keys: SigningKey[], date: Date) => SigningKey | { signsFrom: Date; rotate?: boolean }) =>
    db.transaction(async (client) => {
      await client.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [keyLockClass, `${schema}/${instanceId}`]);
      const date = now();
      const decision = decide(await keysOf(client, instanceId, date), date);
      if ("keyId" in decision) return decision;
      const key = await newSigningKey(instanceId, lifetimes, date, decision.signsFrom);
      if (decision.rotate === true) {
        await client.query(`UPDATE ${q}.signing_keys SET signs_until = $2 WHERE instance_id = $1 AND signs_until > $2`, [instanceId, date]);
      }
      await client.query(`DELETE FROM ${q}.signing_keys WHERE instance_id = $1 AND expires_at <= $2`, [instanceId, date]);
      await insert(client, key);
      return key;
    });
  const load = async (instanceId: string): Promise<SigningKey> => {
    let date = now();
    let keys = await keysOf(undefined, instanceId, date);
    let active = activeKeyOf(keys, date);
    if (active === undefined) {
      active = await generate(instanceId, (k, d) => activeKeyOf(k, d) ?? { signsFrom: d });
      date = now();
      keys = [active, ...keys];
    }
    if (needsNextKey(keys, active, lifetimes, date)) {
      const from = active;
      // In the background: the caller signs with the active key meanwhile.
      void generate(instanceId, (k, d) => (needsNextKey(k, from, lifetimes, d) ? { signsFrom: from.signsUntil } : from)).catch((error: unknown) =>
        logger.warn("postgres signing keys: the next key could not be generated", { error, instanceId }),
      );
    }
    return remember(active);
  };

  await db.prepare();
  return {
    pool: db.pool,
    schema,

    async signingKey(instanceId) {
      open();
      validateInstanceId(instanceId);
      const cached = cache.get(instanceId);
      if (cached !== undefined && cached.until > now().getTime()) return cached.key;
      let pending = loading.get(instanceId);
      if (pending === undefined) {
        pending = load(instanceId).finally(() => loading.delete(instanceId));
        loading.set(instanceId, pending);
      }
      return pending;
    },

    async publicKeys(instanceId) {
      open();
      validateInstanceId(instanceId);
      const { rows } = await db.query<{ public_jwk: unknown }>(
        `SELECT public_jwk FROM ${q}.signing_keys WHERE instance_id = $1 AND expires_at > $2 ORDER BY creation_date DESC, id DESC`,
        [instanceId, now()],
      );
      return { keys: rows.map((r) => jwkFromColumn(r.public_jwk)) };
    },

    async rotate(instanceId) {
      open();
      validateInstanceId(instanceId);
      return remember(await generate(instanceId, (_, date) => ({ signsFrom: date, rotate: true })));
    },

    async close() {
      if (closed) return;
      closed = true;
      cache.clear();
      await db.end();
    },
  };
}

function jwkFromColumn(value: unknown): PublicJwk {
  return Object.freeze((typeof value === "string" ? JSON.parse(value) : value) as PublicJwk);
}

function keyFromRow(row: SigningKeyRow): SigningKey {
  return Object.freeze({
    keyId: row.id,
    instanceId: row.instance_id,
    algorithm: row.algorithm as SigningAlgorithm,
    privateKey: createPrivateKey(row.private_key),
    publicJwk: jwkFromColumn(row.public_jwk),
    creationDate: toDate(row.creation_date),
    signsFrom: toDate(row.signs_from),
    signsUntil: toDate(row.signs_until),
    expiresAt: toDate(row.expires_at),
  });
}
