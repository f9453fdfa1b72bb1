// connect-actions: ZITADEL-style Actions V2 for Connect-ES services.

export { type ActionEvent, encodeEventPayload, rfc3339Nano } from "./action-event.js";
export {
  type ActionServiceImpl,
  type ActionServiceOptions,
  createActionService,
} from "./action-service.js";
export {
  convertLegacyExecutionTargets,
  createSetExecutionCompatAdapter,
  type LegacyExecutionTargetsConversion,
  type SetExecutionCompatOptions,
} from "./action-service-compat.js";
export type { ActionSnapshot, ActionStore } from "./action-store.js";
export {
  type ActionsInterceptorOptions,
  createActionsInterceptor,
  defaultProtectedServices,
} from "./actions-interceptor.js";
export { type BearerAuthOptions, createBearerAuthInterceptor } from "./bearer-auth.js";
export {
  type CallerContext,
  callerContextKey,
  contextFromValues,
  type ResolveContext,
} from "./caller-context.js";
export {
  type Condition,
  type ExecutionType,
  executionId,
  executionTypeOf,
  parseExecutionId,
  validateCondition,
} from "./condition.js";
export {
  checkDeliveryQuery,
  createMemoryDeliveryLog,
  type DeliveryLog,
  type DeliveryPage,
  type DeliveryQuery,
  type DeliveryRecord,
  type MemoryDeliveryLogOptions,
} from "./delivery-log.js";
export { createEndpointGuard, type EndpointGuard, type EndpointGuardOptions } from "./endpoint-guard.js";
export { createEventPublisher, type EventPublisher, type EventPublisherOptions } from "./event-publisher.js";
export type { DeadJob, EventJob, EventQueue, QueuedJob } from "./event-queue.js";
export {
  createEventWorker,
  type EventWorker,
  type EventWorkerOptions,
  isPermanentFailure,
  type RetryPolicy,
  retryDelayMs,
} from "./event-worker.js";
export {
  checkIncludeGraph,
  type Execution,
  type ExecutionTarget,
  maxIncludeDepth,
  validateExecutionTargets,
} from "./execution.js";
export {
  compileExecutionPlan,
  type ExecutionMatch,
  type ExecutionPlan,
  type MethodMatches,
} from "./execution-plan.js";
export {
  createExecutionPlanner,
  type ExecutionPlanner,
  type ExecutionPlannerOptions,
} from "./execution-planner.js";
export {
  type ClaimsFunctionRequest,
  type ClaimsFunctionResult,
  knownFunctions,
  type MetadataEntry,
  runClaimsFunction,
  runSamlFunction,
  type SamlAttribute,
  type SamlFunctionResult,
} from "./function-contracts.js";
export { createFunctionRunner, type FunctionRunner, type FunctionRunnerOptions } from "./function-runner.js";
export { newId } from "./id.js";
export {
  createJsonLogger,
  type JsonLoggerOptions,
  type Logger,
  type LogLevel,
  silentLogger,
} from "./logger.js";
export { createMemoryEventQueue, type MemoryEventQueueOptions } from "./memory-event-queue.js";
export { createMemoryStore, type MemoryStoreOptions } from "./memory-store.js";
export {
  createNodeRouterHandler,
  type NodeHandlerFn,
  type NodeRouterHandler,
  type NodeRouterHandlerOptions,
  type NodeServerRequest,
  type NodeServerResponse,
} from "./node-router-handler.js";
export {
  canonicalHeaderName,
  defaultPayloadHeaders,
  encodeRequestPayload,
  type PayloadHeaders,
  pickPayloadHeaders,
  type RequestPayload,
} from "./payload.js";
export {
  createPostgresDeliveryLog,
  type PostgresDeliveryLog,
  type PostgresDeliveryLogOptions,
} from "./postgres-delivery-log.js";
export {
  createPostgresEventQueue,
  type PostgresEventQueue,
  type PostgresEventQueueOptions,
} from "./postgres-event-queue.js";
export { type MigrationTarget, migrate, type PostgresMigration, postgresMigrations } from "./postgres-migrations.js";
export { createPostgresStore, type PostgresStore, type PostgresStoreOptions } from "./postgres-store.js";
export {
  createRestGateway,
  type RestGateway,
  type RestGatewayOptions,
  type RestRequestAdapter,
  type RestRoute,
  restErrorResponse,
  restStatusFromCode,
} from "./rest-gateway.js";
export {
  signatureHeader,
  signPayload,
  type SignOptions,
  verifySignature,
  type VerifyOptions,
} from "./signature.js";
export {
  applyTargetPatch,
  generateSigningKey,
  maxTargetTimeoutMs,
  type Target,
  type TargetInput,
  type TargetPatch,
  type TargetType,
  validateTargetInput,
} from "./target.js";
export {
  codeFromHttpStatus,
  createTargetDispatcher,
  errorDetail,
  executionFailed,
  type TargetCall,
  TargetFailure,
  targetStatusOf,
  type TargetCallRecord,
  type TargetDispatcher,
  type TargetDispatcherOptions,
  type TargetResponse,
} from "./target-dispatcher.js";
