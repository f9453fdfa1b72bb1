import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Duration, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type {
  Condition as ConditionMessage,
  ConditionSchema,
  ExecutionSchema,
} from "../../gen/zitadel/action/v2/execution_pb.js";
import type { CreateTargetRequest, UpdateTargetRequest } from "../../gen/zitadel/action/v2/action_service_pb.js";
import { PayloadType, type PublicKeySchema, type TargetSchema } from "../../gen/zitadel/action/v2/target_pb.js";
import { type Condition, executionId, parseExecutionId, validateCondition } from "../condition.js";
import type { Execution } from "../execution.js";
import { maxTargetTimeoutMs, type PayloadType as TargetPayloadType, type Target, type TargetType } from "../target.js";
import type { TargetPublicKey } from "../target-key.js";

// The ActionService serves zitadel.action.v2 and zitadel.action.v2beta with one
// implementation: both packages declare the same messages with the same fields.
// The functions here read messages through the v2 types and return plain init
// objects (never messages), so the caller can create the reply with the schema
// of whichever version was called.

/** TargetInit is the init shape of a zitadel.action.v2(beta).Target. */
export type TargetInit = MessageInitShape<typeof TargetSchema>;
/** PublicKeyInit is the init shape of a zitadel.action.v2.PublicKey. */
export type PublicKeyInit = MessageInitShape<typeof PublicKeySchema>;
/** ConditionInit is the init shape of a zitadel.action.v2(beta).Condition. */
export type ConditionInit = MessageInitShape<typeof ConditionSchema>;
/** ExecutionInit is the init shape of a zitadel.action.v2(beta).Execution. */
export type ExecutionInit = MessageInitShape<typeof ExecutionSchema>;

type TargetTypeOneof = CreateTargetRequest["targetType"] | UpdateTargetRequest["targetType"];

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/**
 * targetTypeFromMessage returns the TargetType and interruptOnError of the
 * `target_type` oneof, or undefined when none is set.
 */
export function targetTypeFromMessage(oneof: TargetTypeOneof): { type: TargetType; interruptOnError: boolean } | undefined {
  switch (oneof.case) {
    case "restWebhook":
      return { type: "webhook", interruptOnError: oneof.value.interruptOnError };
    case "restCall":
      return { type: "call", interruptOnError: oneof.value.interruptOnError };
    case "restAsync":
      return { type: "async", interruptOnError: false };
    default:
      return undefined;
  }
}

/**
 * timeoutMsFromDuration converts a target timeout to milliseconds. Throws a
 * ConnectError with Code.InvalidArgument naming `field` when the duration is
 * missing, malformed, not positive, longer than 270 seconds, or not a whole
 * number of milliseconds (targets are timed in milliseconds; ZITADEL keeps
 * nanoseconds, and "0.0001s" would otherwise silently become 1 ms).
 */
export function timeoutMsFromDuration(duration: Duration | undefined, field = "timeout"): number {
  if (duration === undefined) {
    throw invalid(`${field} must be set, for example "10s"`);
  }
  const ms = durationMs(duration, field);
  if (duration.nanos % 1_000_000 !== 0) {
    throw invalid(
      `${field} must be a whole number of milliseconds (at most 3 decimal places, for example "1.5s" or "0.25s"), got ${formatDuration(duration)}`,
    );
  }
  if (ms <= 0) {
    throw invalid(`${field} must be greater than 0s`);
  }
  if (ms > maxTargetTimeoutMs) {
    throw invalid(`${field} must be at most ${maxTargetTimeoutMs / 1000}s`);
  }
  return ms;
}

/**
 * durationMs returns a google.protobuf.Duration in (possibly fractional)
 * milliseconds. Throws a ConnectError with Code.InvalidArgument naming `field`
 * for a duration whose nanos are out of range or of the wrong sign.
 */
export function durationMs(duration: Duration, field: string): number {
  const { seconds, nanos } = duration;
  if (nanos <= -1_000_000_000 || nanos >= 1_000_000_000 || (seconds > 0n && nanos < 0) || (seconds < 0n && nanos > 0)) {
    throw invalid(`${field} is not a valid duration`);
  }
  if (seconds > 1_000_000_000n || seconds < -1_000_000_000n) {
    throw invalid(`${field} is out of range`);
  }
  return Number(seconds) * 1000 + nanos / 1_000_000;
}

/** formatDuration writes a duration as its JSON form does, for messages: "1.000000001s". */
function formatDuration(duration: Duration): string {
  const negative = duration.seconds < 0n || duration.nanos < 0;
  const seconds = duration.seconds < 0n ? -duration.seconds : duration.seconds;
  const nanos = Math.abs(duration.nanos);
  const fraction = nanos === 0 ? "" : "." + String(nanos).padStart(9, "0").replace(/0+$/, "");
  return `${negative ? "-" : ""}${seconds}${fraction}s`;
}

/**
 * durationFromMs returns the init shape of a google.protobuf.Duration of `ms` milliseconds.
 */
export function durationFromMs(ms: number): { seconds: bigint; nanos: number } {
  const whole = Math.trunc(ms / 1000);
  return { seconds: BigInt(whole), nanos: Math.floor((ms - whole * 1000) * 1_000_000) };
}

/**
 * payloadTypeFromMessage returns the payload type of a `payload_type` field:
 * undefined for PAYLOAD_TYPE_UNSPECIFIED (and for undefined: v2beta has no
 * payload_type), which means "json" on creation and "unchanged" on update.
 * Throws a ConnectError with Code.InvalidArgument for an unknown value.
 */
export function payloadTypeFromMessage(payloadType: PayloadType | undefined): TargetPayloadType | undefined {
  switch (payloadType) {
    case undefined:
    case PayloadType.UNSPECIFIED:
      return undefined;
    case PayloadType.JSON:
      return "json";
    case PayloadType.JWT:
      return "jwt";
    case PayloadType.JWE:
      return "jwe";
    default:
      throw invalid(`payload_type ${String(payloadType)} is not a known payload type`);
  }
}

const payloadTypes: Record<TargetPayloadType, PayloadType> = {
  json: PayloadType.JSON,
  jwt: PayloadType.JWT,
  jwe: PayloadType.JWE,
};

/**
 * targetToMessage returns the init shape of the Target message of a stored target.
 */
export function targetToMessage(target: Target): TargetInit {
  const options = { interruptOnError: target.interruptOnError };
  return {
    id: target.id,
    creationDate: timestampFromDate(target.creationDate),
    changeDate: timestampFromDate(target.changeDate),
    name: target.name,
    targetType:
      target.type === "webhook"
        ? { case: "restWebhook", value: options }
        : target.type === "call"
          ? { case: "restCall", value: options }
          : { case: "restAsync", value: {} },
    timeout: durationFromMs(target.timeoutMs),
    endpoint: target.endpoint,
    signingKey: target.signingKey,
    payloadType: payloadTypes[target.payloadType] ?? PayloadType.JSON,
  };
}

/**
 * publicKeyToMessage returns the init shape of the PublicKey message of a
 * target's public key; expiration_date is unset for a key that does not expire.
 */
export function publicKeyToMessage(key: TargetPublicKey): PublicKeyInit {
  return {
    keyId: key.keyId,
    active: key.active,
    publicKey: new TextEncoder().encode(key.publicKey),
    fingerprint: key.fingerprint,
    expirationDate: key.expirationDate === undefined ? undefined : timestampFromDate(key.expirationDate),
    creationDate: timestampFromDate(key.creationDate),
    changeDate: timestampFromDate(key.changeDate),
  };
}

/**
 * conditionFromMessage converts a Condition message to a validated Condition.
 * Throws a ConnectError with Code.InvalidArgument naming `field` when it is
 * missing, has no selector set or is malformed.
 */
export function conditionFromMessage(message: ConditionMessage | undefined, field = "condition"): Condition {
  const kind = message?.conditionType;
  if (kind === undefined || kind.case === undefined) {
    throw invalid(`${field} must have one of request, response, function or event set`);
  }
  let condition: Condition;
  switch (kind.case) {
    case "request":
    case "response": {
      const selector = kind.value.condition;
      switch (selector.case) {
        case "method":
          condition = { type: kind.case, method: selector.value };
          break;
        case "service":
          condition = { type: kind.case, service: selector.value };
          break;
        case "all":
          if (!selector.value) throw invalid(`${field}.${kind.case}.all must be true`);
          condition = { type: kind.case, all: true };
          break;
        default:
          throw invalid(`${field}.${kind.case} must have one of method, service or all set`);
      }
      break;
    }
    case "function":
      if (kind.value.name === "") throw invalid(`${field}.function.name must not be empty`);
      condition = { type: "function", name: kind.value.name };
      break;
    case "event": {
      const selector = kind.value.condition;
      switch (selector.case) {
        case "event":
          condition = { type: "event", event: selector.value };
          break;
        case "group":
          condition = { type: "event", group: selector.value };
          break;
        case "all":
          if (!selector.value) throw invalid(`${field}.event.all must be true`);
          condition = { type: "event", all: true };
          break;
        default:
          throw invalid(`${field}.event must have one of event, group or all set`);
      }
      break;
    }
  }
  try {
    return validateCondition(condition);
  } catch (e) {
    const error = ConnectError.from(e);
    throw new ConnectError(`${field}: ${error.rawMessage}`, error.code);
  }
}

/**
 * conditionToMessage returns the init shape of the Condition message of a Condition.
 */
export function conditionToMessage(condition: Condition): ConditionInit {
  const c = condition;
  switch (c.type) {
    case "request":
    case "response": {
      const selector =
        "method" in c
          ? ({ case: "method", value: c.method } as const)
          : "service" in c
            ? ({ case: "service", value: c.service } as const)
            : ({ case: "all", value: true } as const);
      return { conditionType: { case: c.type, value: { condition: selector } } };
    }
    case "function":
      return { conditionType: { case: "function", value: { name: c.name } } };
    case "event": {
      const selector =
        "event" in c
          ? ({ case: "event", value: c.event } as const)
          : "group" in c
            ? ({ case: "group", value: c.group } as const)
            : ({ case: "all", value: true } as const);
      return { conditionType: { case: "event", value: { condition: selector } } };
    }
  }
}

/**
 * executionToMessage returns the init shape of the Execution message of a
 * stored execution: target entries go to `targets`, include entries (as
 * conditions) to `includes`, each in stored order.
 */
export function executionToMessage(execution: Execution): ExecutionInit {
  const targets: string[] = [];
  const includes: ConditionInit[] = [];
  for (const entry of execution.targets) {
    if ("target" in entry) {
      targets.push(entry.target);
    } else {
      includes.push(conditionToMessage(parseExecutionId(entry.include)));
    }
  }
  return {
    condition: conditionToMessage(execution.condition),
    creationDate: timestampFromDate(execution.creationDate),
    changeDate: timestampFromDate(execution.changeDate),
    targets,
    includes,
  };
}

/**
 * executionIdOf returns the execution ID of a Condition message, see
 * conditionFromMessage for the errors.
 */
export function executionIdOf(message: ConditionMessage | undefined, field = "condition"): string {
  return executionId(conditionFromMessage(message, field));
}
