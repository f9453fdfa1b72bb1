// Events: state changes published to event executions, queued and delivered by a worker.
export { type ActionEvent, encodeEventPayload, rfc3339Nano } from "./action-event.js";
export { createEventPublisher, type EventPublisher, type EventPublisherOptions } from "./event-publisher.js";
export type {
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
} from "./event-queue.js";
export {
  createEventWorker,
  type EventWorker,
  type EventWorkerOptions,
  type EventWorkerStopOptions,
  isPermanentFailure,
  type RetryPolicy,
  retryDelayMs,
} from "./event-worker.js";
export { createMemoryEventQueue, type MemoryEventQueueOptions } from "./memory-event-queue.js";
