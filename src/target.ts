import { randomInt } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * TargetType says how a target's answer is used:
 *
 * - "webhook": only the status counts (ZITADEL restWebhook).
 * - "call": a non-empty JSON body replaces the message (ZITADEL restCall).
 * - "async": fire and forget, in parallel, never delays or changes anything (ZITADEL restAsync).
 */
export type TargetType = "webhook" | "call" | "async";

/**
 * PayloadType is the format of the body a target receives (ZITADEL v4's
 * payload_type):
 *
 * - "json": the JSON payload (the default).
 * - "jwt": the JSON payload as the payload of a JWS in compact form, signed
 *   with the instance's signing key (see SigningKeySource; the public keys are
 *   served as a JWKS), protected header `{alg, kid, typ: "JWT"}`.
 * - "jwe": that signed JWT, encrypted (compact JWE) to the target's active
 *   public key: RSA-OAEP-256 or ECDH-ES+A256KW, A256GCM, `kid` the key ID,
 *   `cty: "JWT"`. A call fails while the target has no active key.
 */
export type PayloadType = "json" | "jwt" | "jwe";

/**
 * TargetEncryptionKey is the active public key of a target, what JWE payloads
 * are encrypted to (see TargetPublicKey for the whole record).
 */
export interface TargetEncryptionKey {
  /** The key ID, the "kid" of the JWE header. */
  readonly keyId: string;
  /** The key as PEM, as it was added. */
  readonly publicKey: string;
  /** When the key stops being used; undefined when it does not expire. */
  readonly expirationDate?: Date;
}

/**
 * Target is an HTTP endpoint that executions call.
 */
export interface Target {
  /** Target ID, assigned by the store, unique across instances. */
  readonly id: string;
  /** The instance (tenant) the target belongs to, "" for the default instance. */
  readonly instanceId: string;
  /** Unique name, 1 to 1000 characters. */
  readonly name: string;
  readonly type: TargetType;
  /** Abort the RPC when the call fails. Always false for "async". */
  readonly interruptOnError: boolean;
  /** Absolute http(s) URL, at most 2048 characters. */
  readonly endpoint: string;
  /** Time the whole call may take, in milliseconds: more than 0, at most 270 000. */
  readonly timeoutMs: number;
  /** Key of the ZITADEL-Signature HMAC, 36 letters and digits. */
  readonly signingKey: string;
  /** Format of the body, "json" unless set otherwise. */
  readonly payloadType: PayloadType;
  /**
   * The active public key (see InstanceStore.activatePublicKey), undefined
   * when the target has none. Calls of a "jwe" target use it; an expired key
   * counts as none.
   */
  readonly encryptionKey?: TargetEncryptionKey;
  readonly creationDate: Date;
  readonly changeDate: Date;
}

/**
 * TargetInput is what creates a target.
 */
export interface TargetInput {
  readonly name: string;
  readonly type: TargetType;
  /** Default false. Must be false for "async" targets. */
  readonly interruptOnError?: boolean;
  readonly endpoint: string;
  readonly timeoutMs: number;
  /** Default "json". */
  readonly payloadType?: PayloadType;
}

/**
 * TargetPatch is what changes a target; fields left undefined stay as they are.
 */
export interface TargetPatch {
  readonly name?: string;
  readonly type?: TargetType;
  readonly interruptOnError?: boolean;
  readonly endpoint?: string;
  readonly timeoutMs?: number;
  readonly payloadType?: PayloadType;
  /** Generate a new signing key. Default false. */
  readonly rotateSigningKey?: boolean;
}

/**
 * maxTargetTimeoutMs is the largest target timeout, 270 seconds, as in ZITADEL.
 */
export const maxTargetTimeoutMs = 270_000;

const keyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/**
 * generateSigningKey returns a new random 36-character key of letters and digits.
 */
export function generateSigningKey(): string {
  let key = "";
  for (let i = 0; i < 36; i++) {
    key += keyAlphabet[randomInt(keyAlphabet.length)];
  }
  return key;
}

/**
 * validateTargetInput checks a new target's fields and returns them normalized
 * (name trimmed, interruptOnError defaulted to false, payloadType to
 * "json"). Throws a ConnectError
 * with Code.InvalidArgument naming the first bad field.
 */
export function validateTargetInput(input: TargetInput): Required<TargetInput> {
  const value = input as unknown as Record<string, unknown> | null | undefined;
  if (value === null || typeof value !== "object") {
    throw invalid("target must be an object");
  }
  return {
    name: validateName(value.name),
    type: validateType(value.type),
    interruptOnError: validateInterrupt(value.type, value.interruptOnError),
    endpoint: validateEndpoint(value.endpoint),
    timeoutMs: validateTimeout(value.timeoutMs),
    payloadType: value.payloadType === undefined ? "json" : validatePayloadType(value.payloadType),
  };
}

/**
 * applyTargetPatch returns the target with a validated patch applied (the ID,
 * creation date and encryption key are kept, and so is the signing key unless
 * rotateSigningKey is set).
 * Throws a ConnectError with Code.InvalidArgument for a bad field.
 */
export function applyTargetPatch(target: Target, patch: TargetPatch, now: Date): Target {
  const type = patch.type === undefined ? target.type : validateType(patch.type);
  const interruptOnError = patch.interruptOnError ?? (type === "async" ? false : target.interruptOnError);
  return {
    id: target.id,
    instanceId: target.instanceId,
    name: patch.name === undefined ? target.name : validateName(patch.name),
    type,
    interruptOnError: validateInterrupt(type, interruptOnError),
    endpoint: patch.endpoint === undefined ? target.endpoint : validateEndpoint(patch.endpoint),
    timeoutMs: patch.timeoutMs === undefined ? target.timeoutMs : validateTimeout(patch.timeoutMs),
    signingKey: patch.rotateSigningKey === true ? generateSigningKey() : target.signingKey,
    payloadType: patch.payloadType === undefined ? target.payloadType : validatePayloadType(patch.payloadType),
    ...(target.encryptionKey === undefined ? {} : { encryptionKey: target.encryptionKey }),
    creationDate: target.creationDate,
    changeDate: now,
  };
}

/** loneSurrogate matches a UTF-16 surrogate without its pair: text that no database can store as given. */
export const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

function validateName(name: unknown): string {
  if (typeof name !== "string" || name.trim() === "") {
    throw invalid("target name must not be empty");
  }
  const trimmed = name.trim();
  if (trimmed.length > 1000) {
    throw invalid("target name must be at most 1000 characters");
  }
  if (/[\u0000-\u001f\u007f]/.test(trimmed) || loneSurrogate.test(trimmed)) {
    throw invalid("target name must not contain control characters or broken Unicode");
  }
  return trimmed;
}

function validateType(type: unknown): TargetType {
  if (type !== "webhook" && type !== "call" && type !== "async") {
    throw invalid('target type must be one of "webhook", "call" or "async"');
  }
  return type;
}

function validatePayloadType(payloadType: unknown): PayloadType {
  if (payloadType !== "json" && payloadType !== "jwt" && payloadType !== "jwe") {
    throw invalid('target payloadType must be one of "json", "jwt" or "jwe"');
  }
  return payloadType;
}

function validateInterrupt(type: unknown, interruptOnError: unknown): boolean {
  if (interruptOnError === undefined) return false;
  if (typeof interruptOnError !== "boolean") {
    throw invalid("interruptOnError must be a boolean");
  }
  if (type === "async" && interruptOnError) {
    throw invalid("an async target cannot interrupt: interruptOnError must be false");
  }
  return interruptOnError;
}

function validateEndpoint(endpoint: unknown): string {
  if (typeof endpoint !== "string" || endpoint.trim() === "") {
    throw invalid("target endpoint must not be empty");
  }
  if (endpoint.length > 2048) {
    throw invalid("target endpoint must be at most 2048 characters");
  }
  if (/[\u0000-\u0020\u007f]/.test(endpoint) || loneSurrogate.test(endpoint)) {
    throw invalid("target endpoint must not contain spaces, control characters or broken Unicode");
  }
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw invalid(`target endpoint "${endpoint}" is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw invalid(`target endpoint must be an http or https URL, got "${url.protocol}"`);
  }
  if (url.hostname === "") {
    throw invalid("target endpoint must have a host");
  }
  if (url.username !== "" || url.password !== "") {
    throw invalid("target endpoint must not contain credentials");
  }
  return endpoint;
}

function validateTimeout(timeoutMs: unknown): number {
  if (typeof timeoutMs !== "number" || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw invalid("target timeout must be greater than 0");
  }
  if (timeoutMs > maxTargetTimeoutMs) {
    throw invalid(`target timeout must be at most ${maxTargetTimeoutMs / 1000}s`);
  }
  return Math.ceil(timeoutMs);
}
