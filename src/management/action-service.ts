import { create, type DescMessage, toJson, type DescMethod, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  ActionService as ActionServiceV2,
  ActivatePublicKeyResponseSchema,
  AddPublicKeyResponseSchema,
  CreateTargetResponseSchema,
  DeactivatePublicKeyResponseSchema,
  DeleteTargetResponseSchema,
  GetTargetResponseSchema,
  ListExecutionFunctionsResponseSchema,
  ListExecutionMethodsResponseSchema,
  ListExecutionServicesResponseSchema,
  ListExecutionsResponseSchema,
  ListFailedEventDeliveriesResponseSchema,
  ListPublicKeysResponseSchema,
  ListTargetCallsResponseSchema,
  ListTargetsResponseSchema,
  ExplainExecutionResponseSchema,
  RemovePublicKeyResponseSchema,
  RetryFailedEventDeliveriesResponseSchema,
  SetExecutionResponseSchema,
  TestTargetResponseSchema,
  UpdateTargetResponseSchema,
} from "../../gen/zitadel/action/v2/action_service_pb.js";
import {
  type ExecutionSearchFilter,
  ExecutionType,
  type PublicKeySearchFilter,
  type TargetSearchFilter,
} from "../../gen/zitadel/action/v2/query_pb.js";
import type { ActionService as ActionServiceV2beta } from "../../gen/zitadel/action/v2beta/action_service_pb.js";
import { type ActionStore, defaultInstanceId, type InstanceStore } from "../store/action-store.js";
import { defaultProtectedServices } from "../actions-interceptor.js";
import { callerContextKey } from "../caller-context.js";
import { authorizeCall, type ManagementAuthorizer, managementPrincipalKey, managementRequestOf } from "./authorize.js";
import {
  conditionFromMessage,
  conditionToMessage,
  durationFromMs,
  durationMs,
  executionIdOf,
  executionToMessage,
  payloadTypeFromMessage,
  publicKeyToMessage,
  targetToMessage,
  targetTypeFromMessage,
  timeoutMsFromDuration,
} from "./action-service-convert.js";
import {
  checkTextFilterMethod,
  matchText,
  matchTimestamp,
  paginate,
  sortExecutions,
  sortPublicKeys,
  sortTargets,
} from "./action-service-list.js";
import { type Condition, type ExecutionType as ConditionType, executionTypeOf, parseExecutionId } from "../condition.js";
import type { Execution, ExecutionTarget } from "../execution.js";
import { checkDeliveryQuery, type DeliveryLog } from "../store/delivery-log.js";
import type { EndpointGuard } from "../dispatch/endpoint-guard.js";
import { createExcerpter, type Excerpter } from "../dispatch/excerpt.js";
import { callAnswerMessage } from "../dispatch/call-answer.js";
import { encodeRequestPayload, pickPayloadHeaders } from "../dispatch/payload.js";
import {
  errorDetail,
  notJsonAnswerDetail,
  type TargetCallRecord,
  type TargetDispatcher,
} from "../dispatch/target-dispatcher.js";
import { encodeEventPayload } from "../events/action-event.js";
import type { EventQueue } from "../events/event-queue.js";
import { checkFunctionAnswer, functionSamplePayload, knownFunctions } from "../functions/function-contracts.js";
import { compileExecutionPlan } from "../plan/execution-plan.js";
import type { ExecutionPlanner } from "../plan/execution-planner.js";
import type { Target, TargetPatch } from "../target.js";
import type { TargetPublicKey } from "../target-key.js";

/**
 * ActionServiceOptions configures createActionService.
 */
export interface ActionServiceOptions {
  /** Where targets and executions live. */
  readonly store: ActionStore;
  /**
   * Authorizes every call before anything else (see ManagementAuthorizer):
   * its principal decides the instance the call manages. Default none: the
   * service trusts what ran before it (see instanceOf). Give it when the
   * service is mounted without createManagementAuthInterceptor.
   */
  readonly authorize?: ManagementAuthorizer;
  /**
   * The instance (tenant) a call manages, default: the instance of the
   * principal under managementPrincipalKey (set by `authorize` or by
   * createManagementAuthInterceptor), else the instanceID of the
   * CallerContext under callerContextKey, else "" (the default instance).
   * Not allowed together with `authorize`.
   */
  readonly instanceOf?: (ctx: HandlerContext) => string;
  /**
   * The services the server serves, or a function that returns them when
   * asked (for a router that gains services later; the answer is cached
   * while it returns the same services). Request and response conditions must name
   * one of their unary methods or one of them; ListExecutionMethods and
   * ListExecutionServices list them.
   */
  readonly services: readonly DescService[] | (() => readonly DescService[]);
  /**
   * The event types that exist. An event condition must name one of them, a
   * group condition a dot-separated prefix of one ("user.human" for
   * "user.human.added"). Default none: only `event: {all: true}` is accepted.
   */
  readonly eventTypes?: readonly string[];
  /** The function names function conditions may use, default knownFunctions. */
  readonly functions?: readonly string[];
  /** Rejects target endpoints the dispatcher would refuse to call, default none. */
  readonly endpointGuard?: EndpointGuard;
  /** Where target calls are recorded; ListTargetCalls is Code.Unimplemented without it. */
  readonly deliveryLog?: DeliveryLog;
  /**
   * The event queue; ListFailedEventDeliveries and RetryFailedEventDeliveries
   * are Code.Unimplemented without it.
   */
  readonly eventQueue?: EventQueue;
  /**
   * The plans ExplainExecution explains, the ones the interceptor, the event
   * publisher and the function runner use. Default none: each
   * ExplainExecution compiles the instance's plan from a snapshot of the
   * store, with the same code.
   */
  readonly planner?: ExecutionPlanner;
  /**
   * Sends TestTarget's calls: the dispatcher of real calls (signing,
   * payload types, endpoint guard, timeouts, and its onCall, which records
   * the call in the delivery log in createActions). TestTarget is
   * Code.Unimplemented without it.
   */
  readonly dispatcher?: TargetDispatcher;
  /**
   * Makes the excerpts TestTarget reports (and records), default
   * createExcerpter() (2048 bytes, no secret fields).
   */
  readonly excerpts?: Excerpter;
  /** Clock for set and deletion dates, default `() => new Date()`. */
  readonly now?: () => Date;
  /**
   * Services that are never intercepted, default defaultProtectedServices
   * (the ActionService v2beta and v2), as for createActionsInterceptor:
   * SetExecution refuses request and response conditions naming them or
   * their methods with Code.InvalidArgument, even when `services` lists them,
   * and ListExecutionMethods and ListExecutionServices leave them out.
   */
  readonly protectedServices?: readonly string[];
}

/**
 * ActionServiceImpl implements both zitadel.action.v2.ActionService and
 * zitadel.action.v2beta.ActionService, so one object can be registered for both.
 */
export type ActionServiceImpl = ServiceImpl<typeof ActionServiceV2> & ServiceImpl<typeof ActionServiceV2beta>;

/**
 * createActionService returns the implementation of ZITADEL's ActionService
 * (v2 and v2beta) on top of an ActionStore. It validates every request before
 * it writes (one atomic store call per write RPC) and fails with a ConnectError:
 *
 * - Code.InvalidArgument: a missing or malformed field (empty name, bad URL,
 *   missing, zero or too long timeout, malformed condition, limit above 1000,
 *   include cycle or include chain deeper than 3, ...).
 * - Code.NotFound: an unknown target (GetTarget, UpdateTarget, SetExecution),
 *   included execution, method, service, function or event type.
 * - Code.AlreadyExists: a target name that is taken.
 * - Code.FailedPrecondition: activating an expired public key, removing the
 *   active one.
 * - Code.ResourceExhausted: a target's 101st public key.
 *
 * The extensions of connect-actions: ListTargetCalls and ListFailedEventDeliveries
 * (Code.Unimplemented without deliveryLog, eventQueue); ExplainExecution (which
 * execution runs for a condition, from `planner`'s plans, see
 * ExecutionPlan.explain); TestTarget (a signed sample call of a target through
 * `dispatcher`, Code.Unimplemented without it; a failing target is reported,
 * not an error); RetryFailedEventDeliveries (EventQueue.requeueDead in the
 * caller's instance, Code.Unimplemented without eventQueue).
 *
 * SetExecution appends `includes` after `targets`; an empty list removes the
 * execution (even when its condition no longer exists). DeleteTarget removes
 * the target from every execution, and its public keys. The public-key RPCs
 * (v2 only) follow ZITADEL's rules: see InstanceStore.addPublicKey and the
 * methods after it.
 */
export function createActionService(options: ActionServiceOptions): ActionServiceImpl {
  if (options.authorize !== undefined && options.instanceOf !== undefined) {
    throw new ConnectError("createActionService takes authorize or instanceOf, not both: the principal decides the instance", Code.InvalidArgument);
  }
  const instanceOf = options.instanceOf ?? defaultInstanceOf;
  /** scope returns the view of the instance that a call manages. */
  const scope = (ctx: HandlerContext): InstanceStore => options.store.forInstance(instanceOf(ctx));
  const now = options.now ?? (() => new Date());
  const functions = options.functions ?? knownFunctions;
  const excerpter = options.excerpts ?? createExcerpter();
  const eventTypes = new Set(options.eventTypes ?? []);
  const protectedServices = new Set(options.protectedServices ?? defaultProtectedServices);
  /** The served services, methods and unary method names, indexed once per list of services. */
  let served: { from: readonly DescService[]; services: Set<string>; methods: Map<string, DescMethod>; unaryMethods: string[] } | undefined;
  const servedNow = () => {
    const list = typeof options.services === "function" ? options.services() : options.services;
    if (served === undefined || served.from.length !== list.length || served.from.some((s, i) => s !== list[i])) {
      const methods = new Map<string, DescMethod>();
      const services = new Set<string>();
      for (const service of list) {
        if (protectedServices.has(service.typeName)) continue;
        services.add(service.typeName);
        for (const method of service.methods) methods.set(`/${service.typeName}/${method.name}`, method);
      }
      const unaryMethods = [...methods].filter(([, m]) => m.methodKind === "unary").map(([name]) => name).sort();
      served = { from: [...list], services, methods, unaryMethods };
    }
    return served;
  };

  const checkConditionExists = (condition: Condition, field: string): void => {
    const c = condition;
    const named = "method" in c ? c.method.split("/")[1] : "service" in c ? c.service : undefined;
    if (named !== undefined && protectedServices.has(named)) {
      throw new ConnectError(
        `${field}: ${named} is never intercepted (protectedServices), so that no execution can lock anyone out of it; ` +
          "executions cannot name it or its methods",
        Code.InvalidArgument,
      );
    }
    const { methods, services } = servedNow();
    if ("method" in c) {
      const method = methods.get(c.method);
      if (method === undefined) {
        throw new ConnectError(`${field}: method "${c.method}" is not served, see ListExecutionMethods`, Code.NotFound);
      }
      if (method.methodKind !== "unary") {
        throw new ConnectError(
          `${field}: method "${c.method}" is ${method.methodKind.replace("_", " ")} streaming; executions only run for unary methods`,
          Code.InvalidArgument,
        );
      }
    } else if ("service" in c) {
      if (!services.has(c.service)) {
        throw new ConnectError(`${field}: service "${c.service}" is not served, see ListExecutionServices`, Code.NotFound);
      }
    } else if ("name" in c) {
      if (!functions.includes(c.name)) {
        throw new ConnectError(`${field}: function "${c.name}" is unknown, see ListExecutionFunctions`, Code.NotFound);
      }
    } else if ("event" in c) {
      if (!eventTypes.has(c.event)) {
        throw new ConnectError(`${field}: event type "${c.event}" is unknown`, Code.NotFound);
      }
    } else if ("group" in c) {
      if (![...eventTypes].some((type) => type.startsWith(c.group + "."))) {
        throw new ConnectError(`${field}: no event type belongs to the group "${c.group}"`, Code.NotFound);
      }
    }
  };

  /** requireCondition returns the validated `condition` of a request, or throws Code.InvalidArgument. */
  const requireCondition = (message: Parameters<typeof conditionFromMessage>[0]): Condition => {
    if (message === undefined) throw new ConnectError("condition is required", Code.InvalidArgument);
    return conditionFromMessage(message, "condition");
  };

  /** requireTrimmedId is requireId of the trimmed ID, as ZITADEL trims the IDs of the public-key RPCs. */
  const requireTrimmedId = (id: string, field: string): string => requireId(id.trim(), field);
  const requireId = (id: string, field = "id"): string => {
    if (id === "") throw new ConnectError(`${field} must not be empty`, Code.InvalidArgument);
    if (id.length > 200) throw new ConnectError(`${field} must be at most 200 characters`, Code.InvalidArgument);
    return id;
  };

  const targetFilter = (filter: TargetSearchFilter, i: number): ((t: Target) => boolean) => {
    const f = filter.filter;
    switch (f.case) {
      case "targetNameFilter": {
        const { targetName, method } = f.value;
        if (targetName.length > 200) {
          throw new ConnectError(`filters[${i}].target_name_filter.target_name must be at most 200 characters`, Code.InvalidArgument);
        }
        checkTextFilterMethod(method);
        return (t) => matchText(t.name, targetName, method);
      }
      case "inTargetIdsFilter": {
        const ids = new Set(f.value.targetIds);
        return (t) => ids.has(t.id);
      }
      default:
        throw new ConnectError(`filters[${i}] must have a filter set`, Code.InvalidArgument);
    }
  };

  const publicKeyFilter = (filter: PublicKeySearchFilter, i: number): ((k: TargetPublicKey) => boolean) => {
    const f = filter.filter;
    const field = `filters[${i}]`;
    switch (f.case) {
      case "keyIdsFilter": {
        const ids = new Set(f.value.ids);
        return (k) => ids.has(k.keyId);
      }
      case "activeFilter": {
        const active = f.value;
        return (k) => k.active === active;
      }
      case "expirationDateFilter": {
        const at = f.value.timestamp;
        const date = at === undefined ? undefined : timestampDate(at);
        if (date === undefined || Number.isNaN(date.getTime()) || at!.nanos < 0 || at!.nanos > 999_999_999) {
          throw new ConnectError(`${field}.expiration_date_filter.timestamp must be a valid time`, Code.InvalidArgument);
        }
        const match = matchTimestamp(date, f.value.method, `${field}.expiration_date_filter`);
        return (k) => match(k.expirationDate);
      }
      default:
        throw new ConnectError(`${field} must have a filter set`, Code.InvalidArgument);
    }
  };

  const executionTypes: Partial<Record<ExecutionType, ConditionType>> = {
    [ExecutionType.REQUEST]: "request",
    [ExecutionType.RESPONSE]: "response",
    [ExecutionType.EVENT]: "event",
    [ExecutionType.FUNCTION]: "function",
  };
  const executionFilter = (filter: ExecutionSearchFilter, i: number): ((e: Execution) => boolean) => {
    const f = filter.filter;
    const field = `filters[${i}]`;
    switch (f.case) {
      case "inConditionsFilter": {
        const ids = new Set(f.value.conditions.map((c, j) => executionIdOf(c, `${field}.in_conditions_filter.conditions[${j}]`)));
        return (e) => ids.has(e.id);
      }
      case "executionTypeFilter": {
        const type = executionTypes[f.value.executionType];
        if (type === undefined) {
          throw new ConnectError(`${field}.execution_type_filter.execution_type must be a known type`, Code.InvalidArgument);
        }
        return (e) => executionTypeOf(e.id) === type;
      }
      case "targetFilter": {
        const id = requireId(f.value.targetId, `${field}.target_filter.target_id`);
        return (e) => e.targets.some((t) => "target" in t && t.target === id);
      }
      case "includeFilter": {
        const id = executionIdOf(f.value.include, `${field}.include_filter.include`);
        return (e) => e.targets.some((t) => "include" in t && t.include === id);
      }
      default:
        throw new ConnectError(`${field} must have a filter set`, Code.InvalidArgument);
    }
  };

  const impl: ServiceImpl<typeof ActionServiceV2> = {
    async createTarget(req, ctx) {
      if (req.name.trim() === "") {
        throw new ConnectError("name must not be empty", Code.InvalidArgument);
      }
      const kind = targetTypeFromMessage(req.targetType);
      if (kind === undefined) {
        throw new ConnectError("one of restWebhook, restCall or restAsync must be set", Code.InvalidArgument);
      }
      const payloadType = payloadTypeFromMessage(req.payloadType);
      const timeoutMs = timeoutMsFromDuration(req.timeout);
      options.endpointGuard?.checkEndpoint(req.endpoint);
      const target = await scope(ctx).createTarget({
        name: req.name,
        type: kind.type,
        interruptOnError: kind.interruptOnError,
        endpoint: req.endpoint,
        timeoutMs,
        payloadType,
      });
      return reply(ctx, CreateTargetResponseSchema, {
        id: target.id,
        creationDate: timestampFromDate(target.creationDate),
        signingKey: target.signingKey,
      });
    },

    async updateTarget(req, ctx) {
      const id = requireId(req.id);
      const kind = targetTypeFromMessage(req.targetType);
      const payloadType = payloadTypeFromMessage(req.payloadType);
      if (req.endpoint !== undefined) options.endpointGuard?.checkEndpoint(req.endpoint);
      let rotateSigningKey = false;
      if (req.expirationSigningKey !== undefined) {
        if (durationMs(req.expirationSigningKey, "expiration_signing_key") !== 0) {
          throw new ConnectError('expiration_signing_key must be "0s": the old key is replaced at once', Code.InvalidArgument);
        }
        rotateSigningKey = true;
      }
      const patch: TargetPatch = {
        name: req.name,
        type: kind?.type,
        interruptOnError: kind?.interruptOnError,
        endpoint: req.endpoint,
        timeoutMs: req.timeout === undefined ? undefined : timeoutMsFromDuration(req.timeout),
        payloadType,
        rotateSigningKey,
      };
      const target = await scope(ctx).updateTarget(id, patch);
      return reply(ctx, UpdateTargetResponseSchema, {
        changeDate: timestampFromDate(target.changeDate),
        signingKey: rotateSigningKey ? target.signingKey : undefined,
      });
    },

    async deleteTarget(req, ctx) {
      const deleted = await scope(ctx).deleteTarget(requireId(req.id));
      return reply(ctx, DeleteTargetResponseSchema, {
        deletionDate: deleted ? timestampFromDate(now()) : undefined,
      });
    },

    async getTarget(req, ctx) {
      const id = requireId(req.id);
      const target = await scope(ctx).getTarget(id);
      if (target === undefined) {
        throw new ConnectError(`target "${id}" not found`, Code.NotFound);
      }
      return reply(ctx, GetTargetResponseSchema, { target: targetToMessage(target) });
    },

    async listTargets(req, ctx) {
      const filters = req.filters.map(targetFilter);
      const sorted = sortTargets(await scope(ctx).listTargets(), req.sortingColumn);
      const page = paginate(
        sorted.filter((t) => filters.every((f) => f(t))),
        req.pagination,
      );
      return reply(ctx, ListTargetsResponseSchema, {
        pagination: { totalResult: page.totalResult, appliedLimit: page.appliedLimit },
        targets: page.items.map(targetToMessage),
      });
    },

    async setExecution(req, ctx) {
      const condition = conditionFromMessage(req.condition);
      const entries: ExecutionTarget[] = [
        ...req.targets.map((target, i) => ({ target: requireId(target, `targets[${i}]`) })),
        ...req.includes.map((include, i) => ({ include: executionIdOf(include, `includes[${i}]`) })),
      ];
      // Removing an execution is allowed even when its condition no longer exists.
      if (entries.length > 0) {
        checkConditionExists(condition, "condition");
      }
      await scope(ctx).setExecution(condition, entries);
      return reply(ctx, SetExecutionResponseSchema, { setDate: timestampFromDate(now()) });
    },

    async listExecutions(req, ctx) {
      const filters = req.filters.map(executionFilter);
      const sorted = sortExecutions(await scope(ctx).listExecutions(), req.sortingColumn);
      const page = paginate(
        sorted.filter((e) => filters.every((f) => f(e))),
        req.pagination,
      );
      return reply(ctx, ListExecutionsResponseSchema, {
        pagination: { totalResult: page.totalResult, appliedLimit: page.appliedLimit },
        executions: page.items.map(executionToMessage),
      });
    },

    async listExecutionFunctions(_req, ctx) {
      return reply(ctx, ListExecutionFunctionsResponseSchema, { functions: [...functions] });
    },

    async listExecutionMethods(_req, ctx) {
      return reply(ctx, ListExecutionMethodsResponseSchema, { methods: servedNow().unaryMethods });
    },

    async listExecutionServices(_req, ctx) {
      return reply(ctx, ListExecutionServicesResponseSchema, { services: [...servedNow().services].sort() });
    },

    async addPublicKey(req, ctx) {
      const targetId = requireTrimmedId(req.targetId, "target_id");
      let expirationDate: Date | undefined;
      if (req.expirationDate !== undefined) {
        expirationDate = timestampDate(req.expirationDate);
        if (Number.isNaN(expirationDate.getTime()) || req.expirationDate.nanos < 0 || req.expirationDate.nanos > 999_999_999) {
          throw new ConnectError("expiration_date must be a valid time", Code.InvalidArgument);
        }
      }
      const key = await scope(ctx).addPublicKey(targetId, { publicKey: req.publicKey, expirationDate });
      return reply(ctx, AddPublicKeyResponseSchema, { keyId: key.keyId, creationDate: timestampFromDate(key.creationDate) });
    },

    async activatePublicKey(req, ctx) {
      const key = await scope(ctx).activatePublicKey(requireTrimmedId(req.targetId, "target_id"), requireTrimmedId(req.keyId, "key_id"));
      return reply(ctx, ActivatePublicKeyResponseSchema, { changeDate: timestampFromDate(key.changeDate) });
    },

    async deactivatePublicKey(req, ctx) {
      const key = await scope(ctx).deactivatePublicKey(requireTrimmedId(req.targetId, "target_id"), requireTrimmedId(req.keyId, "key_id"));
      return reply(ctx, DeactivatePublicKeyResponseSchema, { changeDate: timestampFromDate(key.changeDate) });
    },

    async removePublicKey(req, ctx) {
      const removed = await scope(ctx).removePublicKey(requireTrimmedId(req.targetId, "target_id"), requireTrimmedId(req.keyId, "key_id"));
      return reply(ctx, RemovePublicKeyResponseSchema, { deletionDate: removed ? timestampFromDate(now()) : undefined });
    },

    async listPublicKeys(req, ctx) {
      const targetId = requireTrimmedId(req.targetId, "target_id");
      const filters = req.filters.map(publicKeyFilter);
      const sorted = sortPublicKeys(await scope(ctx).listPublicKeys(targetId), req.sortingColumn);
      const page = paginate(
        sorted.filter((k) => filters.every((f) => f(k))),
        req.pagination,
      );
      return reply(ctx, ListPublicKeysResponseSchema, {
        pagination: { totalResult: page.totalResult, appliedLimit: page.appliedLimit },
        publicKeys: page.items.map(publicKeyToMessage),
      });
    },

    async listTargetCalls(req, ctx) {
      if (options.deliveryLog === undefined) {
        throw new ConnectError("this server keeps no delivery log", Code.Unimplemented);
      }
      if (req.failedOnly && req.succeededOnly) {
        throw new ConnectError("failed_only and succeeded_only cannot both be set", Code.InvalidArgument);
      }
      if (req.pagination !== undefined && req.pagination.offset > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new ConnectError("pagination.offset is too large", Code.InvalidArgument);
      }
      const query = {
        instanceId: instanceOf(ctx),
        targetId: req.targetId === "" ? undefined : requireId(req.targetId, "target_id"),
        executionId: req.executionId === "" ? undefined : req.executionId,
        failedOnly: req.failedOnly,
        succeededOnly: req.succeededOnly,
        since: req.since === undefined ? undefined : timestampDate(req.since),
        offset: Number(req.pagination?.offset ?? 0n),
        limit: req.pagination?.limit ?? 0,
      };
      const { limit } = checkDeliveryQuery(query);
      const page = await options.deliveryLog.list(query);
      return reply(ctx, ListTargetCallsResponseSchema, {
        pagination: { totalResult: BigInt(page.total), appliedLimit: BigInt(limit) },
        calls: page.records.map((r) => ({
          id: r.id,
          targetId: r.targetId,
          targetName: r.targetName,
          executionId: r.executionId,
          trigger: r.trigger,
          endpoint: r.endpoint,
          status: r.status,
          duration: durationFromMs(r.durationMs),
          error: r.error ?? "",
          attempt: r.attempt,
          async: r.async,
          startTime: timestampFromDate(r.startTime),
          requestExcerpt: r.requestExcerpt ?? "",
          responseExcerpt: r.responseExcerpt ?? "",
          test: r.test === true,
        })),
      });
    },

    async listFailedEventDeliveries(req, ctx) {
      if (options.eventQueue === undefined) {
        throw new ConnectError("this server has no event queue", Code.Unimplemented);
      }
      if (req.limit > 1000) {
        throw new ConnectError("limit must be at most 1000", Code.InvalidArgument);
      }
      const dead = await options.eventQueue.listDead({ instanceId: instanceOf(ctx), limit: req.limit === 0 ? 100 : req.limit });
      return reply(ctx, ListFailedEventDeliveriesResponseSchema, {
        deliveries: dead.map((d) => ({
          id: d.id,
          targetId: d.targetId,
          executionId: d.executionId,
          eventType: d.eventType,
          orderingKey: d.orderingKey,
          body: d.body,
          attempts: d.attempts,
          error: d.error,
          createdDate: timestampFromDate(d.createdAt),
          failedDate: timestampFromDate(d.diedAt),
        })),
      });
    },

    async retryFailedEventDeliveries(req, ctx) {
      if (options.eventQueue === undefined) {
        throw new ConnectError("this server has no event queue", Code.Unimplemented);
      }
      if (req.id === "" && req.targetId === "" && req.eventType === "") {
        throw new ConnectError("one of id, target_id or event_type is required", Code.InvalidArgument);
      }
      if (req.eventType.length > 1000) {
        throw new ConnectError("event_type must be at most 1000 characters", Code.InvalidArgument);
      }
      const retried = await options.eventQueue.requeueDead({
        instanceId: instanceOf(ctx),
        id: req.id === "" ? undefined : requireId(req.id, "id"),
        targetId: req.targetId === "" ? undefined : requireId(req.targetId, "target_id"),
        eventType: req.eventType === "" ? undefined : req.eventType,
      });
      return reply(ctx, RetryFailedEventDeliveriesResponseSchema, { retried });
    },

    async explainExecution(req, ctx) {
      const condition = requireCondition(req.condition);
      // As SetExecution: what it would refuse to set (an unknown or protected method, ...) is refused here. Event
      // types are the exception: any event can be published, and one SetExecution does not know still meets the
      // executions of its groups and of all events.
      if (!("event" in condition) && !("group" in condition)) checkConditionExists(condition, "condition");
      const view = scope(ctx);
      let plan;
      let stored: (id: string) => Promise<Execution | undefined>;
      if (options.planner !== undefined) {
        plan = await options.planner.plan(instanceOf(ctx));
        stored = (id) => view.getExecution(id);
      } else {
        const snapshot = await view.snapshot();
        plan = compileExecutionPlan(snapshot);
        stored = async (id) => snapshot.executions.find((e) => e.id === id);
      }
      const explanation = plan.explain(condition);
      const execution = explanation.match === undefined ? undefined : await stored(explanation.match.executionId);
      return reply(ctx, ExplainExecutionResponseSchema, {
        execution: execution === undefined ? undefined : executionToMessage(execution),
        targets: explanation.targets.map(({ target, via }) => ({
          targetId: target.id,
          targetName: target.name,
          via: [...via],
          targetType: `rest_${target.type}`,
          endpoint: target.endpoint,
          interruptOnError: target.interruptOnError,
          timeout: durationFromMs(target.timeoutMs),
        })),
        levels: explanation.levels.map((level) => ({
          executionId: level.executionId,
          condition: conditionToMessage(parseExecutionId(level.executionId)),
          exists: level.exists,
          matched: level.matched,
        })),
      });
    },

    async testTarget(req, ctx) {
      const { dispatcher } = options;
      if (dispatcher === undefined) {
        throw new ConnectError("this server has no target dispatcher", Code.Unimplemented);
      }
      const id = requireId(req.id);
      const condition = requireCondition(req.condition);
      if ((condition.type === "request" || condition.type === "response") && !("method" in condition)) {
        throw new ConnectError(
          `condition.${condition.type}.method is required: TestTarget sends the payload of one method`,
          Code.InvalidArgument,
        );
      }
      if (condition.type === "event" && !("event" in condition)) {
        throw new ConnectError("condition.event.event is required: TestTarget sends the payload of one event type", Code.InvalidArgument);
      }
      checkConditionExists(condition, "condition");
      const target = await scope(ctx).getTarget(id);
      if (target === undefined) {
        throw new ConnectError(`target "${id}" not found`, Code.NotFound);
      }
      const instanceId = instanceOf(ctx);
      let body: string;
      let trigger: string;
      /** checkAnswer throws what the real path would fail a call target's JSON answer with; undefined: nothing parses it. */
      let checkAnswer: ((json: unknown) => void) | undefined;
      if ("method" in condition) {
        const method = servedNow().methods.get(condition.method)!;
        trigger = condition.method;
        const context = { ...ctx.values.get(callerContextKey), instanceID: instanceId };
        const headers = pickPayloadHeaders(ctx.requestHeader, ctx.url);
        const request = toJson(method.input, create(method.input));
        body =
          condition.type === "request"
            ? encodeRequestPayload({ fullMethod: condition.method, context, request, headers })
            : encodeRequestPayload({ fullMethod: condition.method, context, request, response: toJson(method.output, create(method.output)), headers });
        const schema = condition.type === "request" ? method.input : method.output;
        // As the interceptor reads a call target's answer: strictly, unknown fields refused.
        checkAnswer = (json) => callAnswerMessage(schema, target, json, { ignoreUnknownFields: false });
      } else if ("event" in condition) {
        trigger = condition.event;
        body = encodeEventPayload({
          aggregateID: "sample-aggregate",
          aggregateType: condition.event.split(".")[0]!,
          resourceOwner: "sample-org",
          instanceID: instanceId,
          version: "v2",
          sequence: 1,
          eventType: condition.event,
          createdAt: now(),
          userID: "sample-user",
          payload: {},
        });
      } else if ("name" in condition) {
        const name = condition.name;
        trigger = name;
        body = JSON.stringify(functionSamplePayload(name));
        checkAnswer = (json) => checkFunctionAnswer(name, json);
      } else {
        throw new ConnectError("condition must name a method, an event type or a function", Code.InvalidArgument);
      }
      let record: TargetCallRecord | undefined;
      let json: unknown;
      let failed = false;
      try {
        ({ json } = await dispatcher.call({
          target,
          executionId: "",
          trigger,
          body,
          signal: ctx.signal,
          hop: 1,
          // Event deliveries only look at the status.
          ignoreBody: condition.type === "event" ? true : undefined,
          test: true,
          excerpts: excerpter,
          onRecord: (r) => {
            record = r;
          },
        }));
      } catch {
        failed = true;
      }
      if (record === undefined) {
        throw new ConnectError("the dispatcher reported no record of the test call", Code.Internal);
      }
      let answerParses: boolean | undefined;
      let parseError = "";
      if (target.type === "call" && checkAnswer !== undefined) {
        if (!failed) {
          answerParses = true;
          if (json !== undefined && json !== null) {
            try {
              checkAnswer(json);
            } catch (e) {
              answerParses = false;
              parseError = errorDetail(e);
            }
          }
        } else if (record.error === notJsonAnswerDetail(target)) {
          answerParses = false;
          parseError = record.error;
        }
      }
      return reply(ctx, TestTargetResponseSchema, {
        status: record.status,
        latency: durationFromMs(record.durationMs),
        error: record.error ?? "",
        payloadExcerpt: record.requestExcerpt ?? "",
        answerExcerpt: record.responseExcerpt ?? "",
        answerParses,
        parseError,
      });
    },
  };
  const { authorize } = options;
  if (authorize !== undefined) {
    // Every RPC, reads included, is authorized before it validates or touches anything.
    const methods = impl as unknown as Record<string, (req: unknown, ctx: HandlerContext) => Promise<unknown>>;
    for (const [name, method] of Object.entries(methods)) {
      methods[name] = async (req, ctx) => {
        await authorizeCall(authorize, managementRequestOf(ctx));
        return method(req, ctx);
      };
    }
  }
  // Every method creates its reply with the schema of the called method (see
  // reply), so the same object serves both versions.
  return impl as unknown as ActionServiceImpl;
}

/**
 * defaultInstanceOf is the instance a management call manages: its
 * principal's, else the CallerContext's, else the default instance.
 */
function defaultInstanceOf(ctx: HandlerContext): string {
  return ctx.values.get(managementPrincipalKey)?.instanceId ?? ctx.values.get(callerContextKey).instanceID ?? defaultInstanceId;
}

const actionPackages = new Set(["zitadel.action.v2", "zitadel.action.v2beta"]);

/**
 * reply creates the response of an ActionService RPC with the output schema of
 * the method that was called, zitadel.action.v2 or zitadel.action.v2beta:
 * both have messages of the same name with the same fields, so the v2 init
 * shape fits either. Throws a ConnectError with Code.Internal when the method
 * is not of an ActionService.
 */
function reply<Desc extends DescMessage>(ctx: HandlerContext, schema: Desc, init: MessageInitShape<Desc>): MessageShape<Desc> {
  const output = ctx.method.output;
  if (output.typeName !== schema.typeName) {
    const name = schema.typeName.slice(schema.typeName.lastIndexOf(".") + 1);
    if (output.name !== name || !actionPackages.has(output.file.proto.package)) {
      throw new ConnectError(`cannot answer ${output.typeName} with ${schema.typeName}`, Code.Internal);
    }
  }
  return create(output as Desc, init);
}
