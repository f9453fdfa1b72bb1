// Where targets, executions and target call records live: the interfaces and their in-memory implementations.
export {
  type ActionSnapshot,
  type ActionStore,
  defaultInstanceId,
  type InstanceStore,
  maxInstanceIdLength,
  type StoreChange,
  validateInstanceId,
} from "./action-store.js";
export {
  checkDeliveryQuery,
  createMemoryDeliveryLog,
  type DeliveryLog,
  type DeliveryPage,
  type DeliveryQuery,
  type DeliveryRecord,
  type MemoryDeliveryLogOptions,
} from "./delivery-log.js";
export {
  defaultMaxExecutionsPerInstance,
  defaultMaxTargetsPerInstance,
  executionCapReached,
  type InstanceLimits,
  resolveInstanceLimits,
  targetCapReached,
} from "./instance-limits.js";
export { createMemoryStore, type MemoryStoreOptions } from "./memory-store.js";
