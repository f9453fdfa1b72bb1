/**
 * lockClasses are the first keys of the advisory locks connect-actions takes,
 * all in one place so that no two components share one by accident; the
 * second key is a hash of what a lock protects (a schema, an instance, a
 * channel). Released migrations write their class into SQL: never change a
 * value, only add new ones.
 */
export const lockClasses = Object.freeze({
  /** migrate: one migration at a time per schema. */
  migration: 0x0ca_0001,
  /** The store: changes to the executions of one instance. */
  executionGraph: 0x0ca_0002,
  /** The store: creations and renames of the targets of one instance. */
  targets: 0x0ca_0003,
  /** The event queue: held by a worker while it waits for jobs, so enqueues know to NOTIFY. */
  eventWake: 0x0ca_0010,
  /** The event queue's cycle (migration 7): one intake of the inbox at a time per schema. */
  eventIntake: 0x0ca_0011,
  /** The signing keys: key generation for one instance. */
  signingKeys: 0x0ca_0012,
});
