import { clone, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";
import { UserSchema } from "../../gen/zitadel/user/v2/user_pb.js";
import type { ActionEvent } from "../events/action-event.js";
import { postgresErrorMapper } from "../postgres/errors.js";
import { migrate, type PostgresMigration } from "../postgres/migrations.js";
import type { PostgresOutbox } from "../postgres/outbox.js";
import type { SampleUser, UserEvent } from "./user-service.js";

/**
 * SampleUserStore keeps the users of the sample UserService. Every write
 * takes the event that describes it: the store makes sure the event is
 * published when the write is (the memory store after the write, the
 * PostgreSQL store in the same transaction). Reads return copies.
 */
export interface SampleUserStore {
  /** get returns the user with `userId`, undefined when there is none. */
  get(userId: string): Promise<SampleUser | undefined>;
  /** list returns every user, in creation order. */
  list(): Promise<SampleUser[]>;
  /**
   * add stores a new user. Rejects with Code.AlreadyExists when its ID or
   * username is taken.
   */
  add(entry: SampleUser, event: UserEvent): Promise<void>;
  /**
   * replace stores a changed user in place of the version whose
   * details.sequence is `sequence`. Rejects with Code.NotFound when the user
   * is gone, Code.Aborted when another write changed it since (read it again),
   * Code.AlreadyExists when its new username is taken.
   */
  replace(entry: SampleUser, sequence: bigint, event: UserEvent): Promise<void>;
  /** remove deletes the version of the user whose sequence is `sequence`; rejects as replace does. */
  remove(userId: string, sequence: bigint, event: UserEvent): Promise<void>;
  /** setMetadata sets metadata entries of a user (no event); resolves false when the user is gone. */
  setMetadata(userId: string, entries: readonly { key: string; value: Uint8Array }[]): Promise<boolean>;
}

/**
 * MemoryUserStoreOptions configures createMemoryUserStore.
 */
export interface MemoryUserStoreOptions {
  /**
   * onEvent receives the event of every write after the write, and the write
   * resolves once it has (so a durable queue has the event by then). A
   * failure rejects the write and undoes it, unless another write changed
   * the same user meanwhile (the memory store is not transactional: readers
   * may have seen it). Default nothing.
   */
  readonly onEvent?: (event: UserEvent) => void | Promise<void>;
}

/**
 * createMemoryUserStore returns a SampleUserStore in memory, lost on restart.
 */
export function createMemoryUserStore(options: MemoryUserStoreOptions = {}): SampleUserStore {
  const users = new Map<string, SampleUser>();
  const usernames = new Map<string, string>();
  const copy = (entry: SampleUser): SampleUser => ({ user: clone(UserSchema, entry.user), metadata: new Map(entry.metadata) });
  const current = (userId: string, sequence: bigint): SampleUser => {
    const stored = users.get(userId);
    if (stored === undefined) throw new ConnectError(`user "${userId}" not found`, Code.NotFound);
    if (stored.user.details?.sequence !== sequence) {
      throw new ConnectError(`user "${userId}" was changed meanwhile, read it again`, Code.Aborted);
    }
    return stored;
  };
  /** published hands the event of a write to onEvent; when that fails, `undo` reverts the write, then the error is rethrown. */
  const published = async (event: UserEvent, undo: () => void): Promise<void> => {
    try {
      await options.onEvent?.(event);
    } catch (error) {
      undo();
      throw error;
    }
  };
  return {
    async get(userId) {
      const entry = users.get(userId);
      return entry === undefined ? undefined : copy(entry);
    },
    async list() {
      return [...users.values()].map(copy);
    },
    async add(entry, event) {
      const { userId, username } = entry.user;
      if (users.has(userId)) throw new ConnectError(`user "${userId}" already exists`, Code.AlreadyExists);
      if (usernames.has(username)) throw new ConnectError(`username "${username}" is taken`, Code.AlreadyExists);
      const added = copy(entry);
      users.set(userId, added);
      usernames.set(username, userId);
      await published(event, () => {
        if (users.get(userId) !== added) return;
        users.delete(userId);
        if (usernames.get(username) === userId) usernames.delete(username);
      });
    },
    async replace(entry, sequence, event) {
      const { userId, username } = entry.user;
      const stored = current(userId, sequence);
      const owner = usernames.get(username);
      if (owner !== undefined && owner !== userId) throw new ConnectError(`username "${username}" is taken`, Code.AlreadyExists);
      usernames.delete(stored.user.username);
      usernames.set(username, userId);
      const replaced = copy(entry);
      users.set(userId, replaced);
      await published(event, () => {
        if (users.get(userId) !== replaced) return;
        users.set(userId, stored);
        if (usernames.get(username) === userId) usernames.delete(username);
        usernames.set(stored.user.username, userId);
      });
    },
    async remove(userId, sequence, event) {
      const stored = current(userId, sequence);
      users.delete(userId);
      usernames.delete(stored.user.username);
      await published(event, () => {
        if (users.has(userId) || usernames.has(stored.user.username)) return;
        users.set(userId, stored);
        usernames.set(stored.user.username, userId);
      });
    },
    async setMetadata(userId, entries) {
      const stored = users.get(userId);
      if (stored === undefined) return false;
      for (const { key, value } of entries) stored.metadata.set(key, value);
      return true;
    },
  };
}

/**
 * PostgresUserStoreOptions configures createPostgresUserStore.
 */
export interface PostgresUserStoreOptions {
  /** The pool; the store never ends it. */
  readonly pool: pg.Pool;
  /** Writes users and the deliveries of their events in one transaction. */
  readonly outbox: PostgresOutbox;
  /** Turns a user event into the ActionEvent that is published. */
  readonly toActionEvent: (event: UserEvent) => ActionEvent;
  /** Schema of the sample's own tables, default "connect_actions_sample". */
  readonly schema?: string;
}

/**
 * sampleUserMigrations are the migrations of the sample's own schema: the
 * table `users` (per instance: the user as protobuf binary, its metadata as
 * JSON, its username unique in the instance).
 */
export const sampleUserMigrations: readonly PostgresMigration[] = Object.freeze([
  {
    version: 1,
    name: "sample-users",
    sql: (schema: string) => `
      CREATE TABLE ${schema}.users (
        instance_id text NOT NULL,
        id text NOT NULL,
        seq bigint GENERATED ALWAYS AS IDENTITY,
        username text NOT NULL,
        sequence bigint NOT NULL,
        message bytea NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        PRIMARY KEY (instance_id, id),
        CONSTRAINT users_username_key UNIQUE (instance_id, username)
      );
      CREATE INDEX users_seq_idx ON ${schema}.users (instance_id, seq);`,
  },
]);

/**
 * PostgresUserStores are the sample's users in PostgreSQL, every instance's.
 */
export interface PostgresUserStores {
  /** forInstance returns the users of one instance. */
  forInstance(instanceId: string): SampleUserStore;
}

const toConnectError = postgresErrorMapper("sample users", (sqlState) => sqlState === "22021" || sqlState === "22P05");

interface UserRow {
  message: Buffer;
  metadata: Record<string, string>;
}

/**
 * createPostgresUserStore migrates the sample's schema and returns the users
 * of every instance in PostgreSQL, whose writes enqueue their events through
 * the outbox in the same transaction: a user that exists always gets its
 * events delivered, and a write that failed left neither.
 */
export async function createPostgresUserStore(options: PostgresUserStoreOptions): Promise<PostgresUserStores> {
  const { pool, outbox, toActionEvent } = options;
  const schema = options.schema ?? "connect_actions_sample";
  try {
    await migrate(pool, schema, sampleUserMigrations);
  } catch (error) {
    throw toConnectError(error);
  }
  const users = `${pg.escapeIdentifier(schema)}.users`;
  const fromRow = (row: UserRow): SampleUser => ({
    user: fromBinary(UserSchema, row.message),
    metadata: new Map(Object.entries(row.metadata).map(([k, v]) => [k, Buffer.from(v, "base64")])),
  });
  const metadataJson = (metadata: Map<string, Uint8Array>) =>
    JSON.stringify(Object.fromEntries([...metadata].map(([k, v]) => [k, Buffer.from(v).toString("base64")])));
  const read = async (text: string, values: unknown[]): Promise<UserRow[]> => {
    try {
      return (await pool.query<UserRow>(text, values)).rows;
    } catch (error) {
      throw toConnectError(error);
    }
  };
  const taken = (error: unknown, entry: SampleUser): unknown => {
    if (error instanceof pg.DatabaseError && error.code === "23505") {
      return error.constraint === "users_username_key"
        ? new ConnectError(`username "${entry.user.username}" is taken`, Code.AlreadyExists)
        : new ConnectError(`user "${entry.user.userId}" already exists`, Code.AlreadyExists);
    }
    return error;
  };
  /** changed throws Code.NotFound or Code.Aborted when a conditional write found no row. */
  const changed = async (client: pg.ClientBase, instanceId: string, userId: string, rowCount: number | null) => {
    if (rowCount === 1) return;
    const { rows } = await client.query(`SELECT 1 FROM ${users} WHERE instance_id = $1 AND id = $2`, [instanceId, userId]);
    if (rows.length === 0) throw new ConnectError(`user "${userId}" not found`, Code.NotFound);
    throw new ConnectError(`user "${userId}" was changed meanwhile, read it again`, Code.Aborted);
  };
  const forInstance = (instanceId: string): SampleUserStore => ({
    async get(userId) {
      const rows = await read(`SELECT message, metadata FROM ${users} WHERE instance_id = $1 AND id = $2`, [instanceId, userId]);
      return rows[0] === undefined ? undefined : fromRow(rows[0]);
    },
    async list() {
      return (await read(`SELECT message, metadata FROM ${users} WHERE instance_id = $1 ORDER BY seq`, [instanceId])).map(fromRow);
    },
    add: (entry, event) =>
      outbox.transaction(async (client) => {
        try {
          await client.query(`INSERT INTO ${users} (instance_id, id, username, sequence, message, metadata) VALUES ($1, $2, $3, $4, $5, $6::jsonb)`, [
            instanceId,
            entry.user.userId,
            entry.user.username,
            String(entry.user.details?.sequence ?? 0n),
            Buffer.from(toBinary(UserSchema, entry.user)),
            metadataJson(entry.metadata),
          ]);
        } catch (error) {
          throw taken(error, entry);
        }
        return { result: undefined, events: toActionEvent(event) };
      }),
    replace: (entry, sequence, event) =>
      outbox.transaction(async (client) => {
        let rowCount: number | null;
        try {
          ({ rowCount } = await client.query(
            `UPDATE ${users} SET username = $4, sequence = $5, message = $6, metadata = $7::jsonb
             WHERE instance_id = $1 AND id = $2 AND sequence = $3`,
            [
              instanceId,
              entry.user.userId,
              String(sequence),
              entry.user.username,
              String(entry.user.details?.sequence ?? 0n),
              Buffer.from(toBinary(UserSchema, entry.user)),
              metadataJson(entry.metadata),
            ],
          ));
        } catch (error) {
          throw taken(error, entry);
        }
        await changed(client, instanceId, entry.user.userId, rowCount);
        return { result: undefined, events: toActionEvent(event) };
      }),
    remove: (userId, sequence, event) =>
      outbox.transaction(async (client) => {
        const { rowCount } = await client.query(`DELETE FROM ${users} WHERE instance_id = $1 AND id = $2 AND sequence = $3`, [
          instanceId,
          userId,
          String(sequence),
        ]);
        await changed(client, instanceId, userId, rowCount);
        return { result: undefined, events: toActionEvent(event) };
      }),
    async setMetadata(userId, entries) {
      const patch = metadataJson(new Map(entries.map((e) => [e.key, e.value])));
      try {
        const { rowCount } = await pool.query(`UPDATE ${users} SET metadata = metadata || $3::jsonb WHERE instance_id = $1 AND id = $2`, [
          instanceId,
          userId,
          patch,
        ]);
        return rowCount === 1;
      } catch (error) {
        throw toConnectError(error);
      }
    },
  });
  return { forInstance };
}
