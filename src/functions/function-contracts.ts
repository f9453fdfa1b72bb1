import { Code, ConnectError } from "@connectrpc/connect";
import type { FunctionRunner, FunctionRunOptions } from "./function-runner.js";

/**
 * knownFunctions are the function names ZITADEL defines: "preuserinfo"
 * (before userinfo and ID token claims are set), "preaccesstoken" (before
 * JWT access token claims are set) and "presamlresponse" (before a SAML
 * response is created).
 */
export const knownFunctions: readonly string[] = ["preuserinfo", "preaccesstoken", "presamlresponse"];

/**
 * MetadataEntry is user metadata a function target asks to set; `value` is
 * the decoded bytes of the base64 value it sent.
 */
export interface MetadataEntry {
  readonly key: string;
  readonly value: Uint8Array;
}

/**
 * ClaimsFunctionRequest is the payload of preuserinfo and preaccesstoken;
 * `function` is filled in by runClaimsFunction.
 */
export interface ClaimsFunctionRequest {
  readonly userinfo?: Record<string, unknown>;
  readonly user?: unknown;
  readonly user_metadata?: unknown;
  readonly org?: unknown;
  readonly user_grants?: unknown;
  readonly application?: { readonly client_id?: string };
}

/**
 * ClaimsFunctionResult is what the targets of a claims function asked for,
 * merged in target order.
 */
export interface ClaimsFunctionResult {
  /** The input claims plus the appended ones; existing claims are never overwritten. */
  readonly claims: Record<string, unknown>;
  /** Metadata to set on the user, in order. */
  readonly metadata: MetadataEntry[];
  /** The log claim values, also put under `urn:zitadel:iam:action:function/<name>:log`. */
  readonly logs: string[];
}

/**
 * SamlAttribute is an attribute of a SAML response.
 */
export interface SamlAttribute {
  readonly name: string;
  readonly name_format: string;
  readonly value: string[];
}

/**
 * SamlFunctionResult is what the targets of presamlresponse asked for.
 */
export interface SamlFunctionResult {
  /** The input attributes plus the appended ones. */
  readonly attributes: SamlAttribute[];
  readonly metadata: MetadataEntry[];
}

const reservedClaimPrefix = "urn:zitadel:iam";

/**
 * runClaimsFunction runs "preuserinfo" or "preaccesstoken" and applies the
 * answers as ZITADEL does: `append_claims` entries are added unless the key
 * starts with "urn:zitadel:iam" or already exists (a log line says so),
 * `append_log_claims` go to `urn:zitadel:iam:action:function/<name>:log`,
 * `set_user_metadata` values are base64. An answer that does not follow the
 * contract fails with Code.FailedPrecondition.
 */
export async function runClaimsFunction(
  runner: FunctionRunner,
  name: "preuserinfo" | "preaccesstoken",
  request: ClaimsFunctionRequest,
  claims: Record<string, unknown>,
  options?: FunctionRunOptions | AbortSignal,
): Promise<ClaimsFunctionResult> {
  const answers = await runner.run(name, { function: `function/${name}`, ...request }, options);
  const merged: Record<string, unknown> = { ...claims };
  const metadata: MetadataEntry[] = [];
  const logs: string[] = [];
  for (const answer of answers) {
    const a = contract(name, answer, ["append_claims", "append_log_claims", "set_user_metadata"]);
    for (const claim of list(name, a.append_claims, "append_claims")) {
      const { key, value } = claim as { key?: unknown; value?: unknown };
      if (typeof key !== "string" || key === "") throw broken(name, "append_claims entries need a non-empty key");
      if (key.startsWith(reservedClaimPrefix)) {
        logs.push(`key "${key}" is reserved`);
      } else if (key in merged) {
        logs.push(`key "${key}" already exists`);
      } else {
        merged[key] = value;
      }
    }
    for (const line of list(name, a.append_log_claims, "append_log_claims")) {
      if (typeof line !== "string") throw broken(name, "append_log_claims must be strings");
      logs.push(line);
    }
    metadata.push(...metadataOf(name, a.set_user_metadata));
  }
  if (logs.length > 0) {
    merged[`${reservedClaimPrefix}:action:function/${name}:log`] = logs;
  }
  return { claims: merged, metadata, logs };
}

/**
 * runSamlFunction runs "presamlresponse": `append_attribute` entries
 * ({name, name_format, value[]}) are added to the attributes,
 * `set_user_metadata` as for claims functions.
 */
export async function runSamlFunction(
  runner: FunctionRunner,
  request: { readonly user?: unknown; readonly user_grants?: unknown },
  attributes: readonly SamlAttribute[],
  options?: FunctionRunOptions | AbortSignal,
): Promise<SamlFunctionResult> {
  const name = "presamlresponse";
  const answers = await runner.run(name, { function: `function/${name}`, ...request }, options);
  const out = [...attributes];
  const metadata: MetadataEntry[] = [];
  for (const answer of answers) {
    const a = contract(name, answer, ["append_attribute", "set_user_metadata"]);
    for (const attr of list(name, a.append_attribute, "append_attribute")) {
      const { name: n, name_format, value } = attr as Partial<SamlAttribute>;
      if (typeof n !== "string" || n === "" || !Array.isArray(value) || value.some((v) => typeof v !== "string")) {
        throw broken(name, "append_attribute entries need a name and a list of string values");
      }
      out.push({ name: n, name_format: typeof name_format === "string" ? name_format : "", value: [...value] });
    }
    metadata.push(...metadataOf(name, a.set_user_metadata));
  }
  return { attributes: out, metadata };
}

function broken(name: string, why: string): ConnectError {
  return new ConnectError("Execution failed", Code.FailedPrecondition, undefined, undefined, new Error(`function ${name}: ${why}`));
}

function contract(name: string, answer: unknown, fields: string[]): Record<string, unknown> {
  if (answer === null || typeof answer !== "object" || Array.isArray(answer)) {
    throw broken(name, "a target answered something other than a JSON object");
  }
  const unknown = Object.keys(answer).filter((k) => !fields.includes(k));
  if (unknown.length > 0) throw broken(name, `unknown fields in a target's answer: ${unknown.join(", ")}`);
  return answer as Record<string, unknown>;
}

function list(name: string, value: unknown, field: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw broken(name, `${field} must be a list`);
  return value;
}

function metadataOf(name: string, value: unknown): MetadataEntry[] {
  return list(name, value, "set_user_metadata").map((entry) => {
    const { key, value: v } = entry as { key?: unknown; value?: unknown };
    if (typeof key !== "string" || key === "" || typeof v !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(v)) {
      throw broken(name, "set_user_metadata entries need a key and a base64 value");
    }
    return { key, value: new Uint8Array(Buffer.from(v, "base64")) };
  });
}
