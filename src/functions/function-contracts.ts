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
 * `function` (and `response`, for targets after the first answer) are filled
 * in by runClaimsFunction. Members that are undefined, null or empty lists are
 * left out, as ZITADEL's Go structs do (`omitempty`).
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
 * ClaimsFunctionResult is what the targets of a claims function asked for.
 */
export interface ClaimsFunctionResult {
  /** The input claims plus the appended ones; existing claims are never overwritten. */
  readonly claims: Record<string, unknown>;
  /** Metadata to set on the user, in order (entries with an empty key are left out and logged). */
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

/** ClaimsResponse is the combined answer of the targets of a claims function. */
interface ClaimsResponse {
  readonly set_user_metadata?: readonly MetadataEntry[];
  readonly append_claims?: readonly { readonly key: string; readonly value: unknown }[];
  readonly append_log_claims?: readonly string[];
}

/** SamlResponse is the combined answer of the targets of presamlresponse. */
interface SamlResponse {
  readonly set_user_metadata?: readonly MetadataEntry[];
  readonly append_attribute?: readonly SamlAttribute[];
}

/**
 * runClaimsFunction runs "preuserinfo" or "preaccesstoken" as ZITADEL does.
 * The answers of the targets are combined into one response: a member a
 * target answers (`set_user_metadata`, `append_claims`, `append_log_claims`)
 * replaces that member of the response so far, members it leaves out are
 * kept, and every later target gets the response so far as `response` in its
 * payload. Answers are read as Go's encoding/json reads them: members outside
 * the contract are ignored (a target may echo its payload to change nothing),
 * keys match case-insensitively (`{"Key": ..., "Value": ...}`), null clears a
 * member; metadata values are base64. An answer of the wrong shape fails the
 * target (Code.FailedPrecondition "Execution failed").
 *
 * Then, as ZITADEL: `append_claims` entries are added unless the key starts
 * with "urn:zitadel:iam" (skipped) or the claim exists (`key "k" already
 * exists` is logged); the log lines (metadata entries that cannot be set,
 * existing claims, then `append_log_claims`) go to
 * `urn:zitadel:iam:action:function/<name>:log`.
 */
export async function runClaimsFunction(
  runner: FunctionRunner,
  name: "preuserinfo" | "preaccesstoken",
  request: ClaimsFunctionRequest,
  claims: Record<string, unknown>,
  options?: FunctionRunOptions | AbortSignal,
): Promise<ClaimsFunctionResult> {
  const payload = omitEmpty({ function: `function/${name}`, ...request });
  const response = await runner.runCombined<ClaimsResponse>(
    name,
    payload,
    (soFar, answer) => ({ ...soFar, ...readClaimsAnswer(name, answer) }),
    encodeResponse,
    options,
  );
  const merged: Record<string, unknown> = { ...claims };
  const logs: string[] = [];
  const metadata: MetadataEntry[] = [];
  for (const m of response?.set_user_metadata ?? []) {
    if (m.key === "") logs.push(`failed to set user metadata key ${JSON.stringify(m.key)}`);
    else metadata.push(m);
  }
  for (const { key, value } of response?.append_claims ?? []) {
    if (key.startsWith(reservedClaimPrefix)) continue;
    if (merged[key] === undefined || merged[key] === null) merged[key] = value;
    else logs.push(`key ${JSON.stringify(key)} already exists`);
  }
  logs.push(...(response?.append_log_claims ?? []));
  if (logs.length > 0) {
    merged[`${reservedClaimPrefix}:action:function/${name}:log`] = logs;
  }
  return { claims: merged, metadata, logs };
}

/**
 * runSamlFunction runs "presamlresponse": the answers are combined and read
 * as in runClaimsFunction; `append_attribute` entries ({name, name_format,
 * value[]}) are added to the attributes, `set_user_metadata` is returned.
 */
export async function runSamlFunction(
  runner: FunctionRunner,
  request: { readonly user?: unknown; readonly user_grants?: unknown },
  attributes: readonly SamlAttribute[],
  options?: FunctionRunOptions | AbortSignal,
): Promise<SamlFunctionResult> {
  const name = "presamlresponse";
  const payload = omitEmpty({ function: `function/${name}`, ...request });
  const response = await runner.runCombined<SamlResponse>(
    name,
    payload,
    (soFar, answer) => ({ ...soFar, ...readSamlAnswer(answer) }),
    encodeResponse,
    options,
  );
  return {
    attributes: [...attributes, ...(response?.append_attribute ?? [])],
    metadata: (response?.set_user_metadata ?? []).filter((m) => m.key !== ""),
  };
}

/** readClaimsAnswer reads one target's answer of a claims function: the members it sets (see runClaimsFunction). */
function readClaimsAnswer(name: string, answer: unknown): Partial<ClaimsResponse> {
  const a = goObject(name, answer);
  return {
    ...member(a, "set_user_metadata", (v) => goList(name, v, "set_user_metadata", (e, i) => goMetadata(name, e, `set_user_metadata[${i}]`))),
    ...member(a, "append_claims", (v) => goList(name, v, "append_claims", (e, i) => goClaim(name, e, `append_claims[${i}]`))),
    ...member(a, "append_log_claims", (v) => goList(name, v, "append_log_claims", (e, i) => goString(name, e, `append_log_claims[${i}]`))),
  };
}

/** readSamlAnswer reads one target's answer of presamlresponse: the members it sets (see runSamlFunction). */
function readSamlAnswer(answer: unknown): Partial<SamlResponse> {
  const name = "presamlresponse";
  const a = goObject(name, answer);
  return {
    ...member(a, "set_user_metadata", (v) => goList(name, v, "set_user_metadata", (e, i) => goMetadata(name, e, `set_user_metadata[${i}]`))),
    ...member(a, "append_attribute", (v) => goList(name, v, "append_attribute", (e, i) => goAttribute(name, e, `append_attribute[${i}]`))),
  };
}

/**
 * checkFunctionAnswer reads a call target's JSON answer of function `name`
 * as runClaimsFunction ("preuserinfo", "preaccesstoken") and runSamlFunction
 * ("presamlresponse") read it, leniently as Go's encoding/json: it throws
 * what would fail the target there (Code.FailedPrecondition "Execution
 * failed", the reason in the cause). Any JSON answer passes for other
 * functions, whose answers FunctionRunner.run hands over as they are.
 */
export function checkFunctionAnswer(name: string, answer: unknown): void {
  if (name === "preuserinfo" || name === "preaccesstoken") readClaimsAnswer(name, answer);
  else if (name === "presamlresponse") readSamlAnswer(answer);
}

/**
 * functionSamplePayload returns a payload of function `name` as its targets
 * get it, with sample values (a user "sample-user" of the organization
 * "sample-org"): the payload of runClaimsFunction for "preuserinfo" and
 * "preaccesstoken", of runSamlFunction for "presamlresponse", and
 * `{"function": "function/<name>"}` for other functions, whose payload the
 * application decides. For TestTarget.
 */
export function functionSamplePayload(name: string): Record<string, unknown> {
  const user = {
    id: "sample-user",
    state: "USER_STATE_ACTIVE",
    username: "sample@example.com",
    loginNames: ["sample@example.com"],
    preferredLoginName: "sample@example.com",
    human: {
      profile: { givenName: "Sample", familyName: "User", displayName: "Sample User" },
      email: { email: "sample@example.com", isVerified: true },
    },
  };
  switch (name) {
    case "preuserinfo":
    case "preaccesstoken":
      return omitEmpty({
        function: `function/${name}`,
        userinfo: { sub: "sample-user", email: "sample@example.com", email_verified: true },
        user,
        org: { id: "sample-org", name: "Sample Org", primary_domain: "sample.example.com" },
        application: { client_id: "sample-client" },
      });
    case "presamlresponse":
      return { function: `function/${name}`, user };
    default:
      return { function: `function/${name}` };
  }
}

/** encodeResponse writes the combined response for the next target's payload: metadata values as base64, empty members left out. */
function encodeResponse(response: ClaimsResponse | SamlResponse): unknown {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(response)) {
    if (!Array.isArray(value) || value.length === 0) continue;
    out[key] = key === "set_user_metadata" ? (value as MetadataEntry[]).map((m) => ({ key: m.key, value: Buffer.from(m.value).toString("base64") })) : value;
  }
  return out;
}

function broken(name: string, why: string): ConnectError {
  return new ConnectError("Execution failed", Code.FailedPrecondition, undefined, undefined, new Error(`function ${name}: ${why}`));
}

/** omitEmpty drops undefined, null and empty lists, as Go's `omitempty` does for pointers and slices. */
function omitEmpty(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)));
}

/** goKey finds a member as Go's encoding/json does: the exact key, else the last case-insensitive match. */
function goKey(object: Record<string, unknown>, key: string): string | undefined {
  if (Object.hasOwn(object, key)) return key;
  let found: string | undefined;
  for (const k of Object.keys(object)) if (k.toLowerCase() === key.toLowerCase()) found = k;
  return found;
}

/** member returns `{[key]: read(value)}` for a member the answer has, `{[key]: undefined}` for null, `{}` when absent. */
function member<T>(object: Record<string, unknown>, key: string, read: (value: unknown) => T): Record<string, T | undefined> {
  const k = goKey(object, key);
  if (k === undefined) return {};
  const value = object[k];
  return { [key]: value === null ? undefined : read(value) };
}

function goObject(name: string, answer: unknown): Record<string, unknown> {
  if (answer === null || typeof answer !== "object" || Array.isArray(answer)) {
    throw broken(name, "a target answered something other than a JSON object");
  }
  return answer as Record<string, unknown>;
}

function goList<T>(name: string, value: unknown, field: string, read: (entry: unknown, i: number) => T): T[] {
  if (!Array.isArray(value)) throw broken(name, `${field} must be a list`);
  return value.map(read);
}

function goString(name: string, value: unknown, field: string): string {
  if (value === null) return "";
  if (typeof value !== "string") throw broken(name, `${field} must be a string`);
  return value;
}

function goMetadata(name: string, entry: unknown, field: string): MetadataEntry {
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) throw broken(name, `${field} must be an object`);
  const e = entry as Record<string, unknown>;
  const keyOf = goKey(e, "key");
  const valueOf = goKey(e, "value");
  const key = keyOf === undefined ? "" : goString(name, e[keyOf], `${field}.key`);
  const raw = valueOf === undefined || e[valueOf] === null ? "" : e[valueOf];
  if (typeof raw !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(raw.replace(/[\r\n]/g, "")) || raw.replace(/[\r\n]/g, "").length % 4 !== 0) {
    throw broken(name, `${field}.value must be base64`);
  }
  return { key, value: new Uint8Array(Buffer.from(raw, "base64")) };
}

function goClaim(name: string, entry: unknown, field: string): { key: string; value: unknown } {
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) throw broken(name, `${field} must be an object`);
  const e = entry as Record<string, unknown>;
  const keyOf = goKey(e, "key");
  const valueOf = goKey(e, "value");
  return { key: keyOf === undefined ? "" : goString(name, e[keyOf], `${field}.key`), value: valueOf === undefined ? null : e[valueOf] };
}

function goAttribute(name: string, entry: unknown, field: string): SamlAttribute {
  if (entry === null || typeof entry !== "object" || Array.isArray(entry)) throw broken(name, `${field} must be an object`);
  const e = entry as Record<string, unknown>;
  const get = (key: string) => {
    const k = goKey(e, key);
    return k === undefined ? undefined : e[k];
  };
  const values = get("value");
  return {
    name: goString(name, get("name") ?? null, `${field}.name`),
    name_format: goString(name, get("name_format") ?? null, `${field}.name_format`),
    value: values === undefined || values === null ? [] : goList(name, values, `${field}.value`, (v, i) => goString(name, v, `${field}.value[${i}]`)),
  };
}
