// "connect-actions": ZITADEL-style Actions V2 for Connect-ES services. The interceptor and its model,
// execution plans, stores (interfaces and memory implementations), target dispatch, events and functions.
// PostgreSQL, the management API, the web console and the contract suites have entry points of their own:
// "connect-actions/postgres", "connect-actions/management", "connect-actions/console" and "connect-actions/testing".
export { type ActionsInterceptorOptions, createActionsInterceptor, defaultProtectedServices } from "./actions-interceptor.js";
export {
  type CallerContext,
  callerContextKey,
  contextFromValues,
  type ResolveContext,
  type ResolveInstance,
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
  checkIncludeGraph,
  type Execution,
  type ExecutionTarget,
  maxIncludeDepth,
  validateExecutionTargets,
} from "./execution.js";
export { createHostInstanceResolver, type HostInstanceResolverOptions, hostNameOf, type RequestAddress } from "./host-instance.js";
export { newId } from "./id.js";
export type { ManagementAuthorizer, ManagementPrincipal, ManagementRequest, ManagementRole } from "./management/authorize.js";
export { type Actions, type ActionsOptions, createActions, type RegisterManagementOptions } from "./setup.js";
export { createJsonLogger, type JsonLoggerOptions, type Logger, type LogLevel, silentLogger } from "./logger.js";
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
  canonicalHeaderName,
  codeFromHttpStatus,
  createEndpointGuard,
  createTargetDispatcher,
  defaultPayloadHeaders,
  encodeRequestPayload,
  type EndpointGuard,
  type EndpointGuardOptions,
  errorDetail,
  executionFailed,
  type PayloadHeaders,
  pickPayloadHeaders,
  type RequestPayload,
  signatureHeader,
  type SignOptions,
  signPayload,
  type TargetCall,
  type TargetCallRecord,
  type TargetDispatcher,
  type TargetDispatcherOptions,
  TargetFailure,
  type TargetResponse,
  targetStatusOf,
  type VerifyOptions,
  verifySignature,
} from "./dispatch/index.js";
export {
  type ActionEvent,
  createEventPublisher,
  createEventWorker,
  createMemoryEventQueue,
  type DeadJob,
  encodeEventPayload,
  type EventJob,
  type EventPublisher,
  type EventPublisherOptions,
  type EventQueue,
  type EventWorker,
  type EventWorkerOptions,
  isPermanentFailure,
  type ListDeadOptions,
  type MemoryEventQueueOptions,
  type QueuedJob,
  retryDelayMs,
  type RetryPolicy,
  rfc3339Nano,
} from "./events/index.js";
export {
  type ClaimsFunctionRequest,
  type ClaimsFunctionResult,
  createFunctionRunner,
  type FunctionRunner,
  type FunctionRunnerOptions,
  type FunctionRunOptions,
  knownFunctions,
  type MetadataEntry,
  runClaimsFunction,
  runSamlFunction,
  type SamlAttribute,
  type SamlFunctionResult,
} from "./functions/index.js";
export {
  compileExecutionPlan,
  createExecutionPlanner,
  type ExecutionMatch,
  type ExecutionPlan,
  type ExecutionPlanner,
  type ExecutionPlannerOptions,
  type MethodMatches,
} from "./plan/index.js";
export {
  type ActionSnapshot,
  type ActionStore,
  checkDeliveryQuery,
  createMemoryDeliveryLog,
  createMemoryStore,
  type DeliveryLog,
  type DeliveryPage,
  type DeliveryQuery,
  type DeliveryRecord,
  defaultInstanceId,
  defaultMaxExecutionsPerInstance,
  defaultMaxTargetsPerInstance,
  executionCapReached,
  type InstanceLimits,
  type InstanceStore,
  maxInstanceIdLength,
  type MemoryDeliveryLogOptions,
  type MemoryStoreOptions,
  resolveInstanceLimits,
  type StoreChange,
  targetCapReached,
  validateInstanceId,
} from "./store/index.js";
