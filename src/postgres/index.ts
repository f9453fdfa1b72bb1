// "connect-actions/postgres": the PostgreSQL store, event queue, delivery log and signing keys (pg is an optional peer dependency).
export type { PostgresConnectionOptions } from "./connection.js";
export {
  createPostgresDeliveryLog,
  type PostgresDeliveryLog,
  type PostgresDeliveryLogOptions,
} from "./delivery-log.js";
export {
  createPostgresEventQueue,
  type PostgresEventQueue,
  type PostgresEventQueueOptions,
} from "./event-queue.js";
export {
  createPostgresOutbox,
  type OutboxTransactionOptions,
  type OutboxWrite,
  type PostgresOutbox,
  type PostgresOutboxOptions,
} from "./outbox.js";
export { createPostgresHealthCheck, type PostgresHealthCheckOptions } from "./health-check.js";
export { type MigrationTarget, migrate, type PostgresMigration, postgresMigrations } from "./migrations.js";
export {
  createPostgresSigningKeySource,
  type PostgresSigningKeySource,
  type PostgresSigningKeySourceOptions,
} from "./signing-key-source.js";
export { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from "./store.js";
