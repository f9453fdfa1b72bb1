// Where targets, executions and target call records live: the interfaces and their in-memory implementations.
export type { ActionSnapshot, ActionStore } from "./action-store.js";
export {
  checkDeliveryQuery,
  createMemoryDeliveryLog,
  type DeliveryLog,
  type DeliveryPage,
  type DeliveryQuery,
  type DeliveryRecord,
  type MemoryDeliveryLogOptions,
} from "./delivery-log.js";
export { createMemoryStore, type MemoryStoreOptions } from "./memory-store.js";
