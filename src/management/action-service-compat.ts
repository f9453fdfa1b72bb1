import type { DescMethod, JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { RestRequestAdapter } from "./rest-gateway.js";

// Older releases of ZITADEL's zitadel.action.v2beta declared the targets of an
// execution as a list of objects, each either a target ID or an included
// condition: `"targets": [{"target": "<id>"}, {"include": {...}}]`. The current
// API (which connect-actions serves) has `repeated string targets` and, as an
// extension, `repeated Condition includes`. Published guides and scripts still
// send the older shape; the adapter here translates it for REST calls.

const setExecutionRequestTypes = new Set(["zitadel.action.v2beta.SetExecutionRequest", "zitadel.action.v2.SetExecutionRequest"]);

/**
 * LegacyExecutionTargetsConversion is the result of
 * convertLegacyExecutionTargets.
 */
export interface LegacyExecutionTargetsConversion {
  /**
   * The request JSON to decode: a new object in the current shape when
   * `converted` is true, else the input itself, unchanged.
   */
  readonly json: JsonObject;
  /** True when `targets` held objects of the older shape and was translated. */
  readonly converted: boolean;
  /**
   * True when an include preceded a target in the older list. The current
   * shape runs all targets before all includes, so such an include now runs
   * after those targets (see convertLegacyExecutionTargets).
   */
  readonly reordered: boolean;
}

/**
 * convertLegacyExecutionTargets translates the JSON of a SetExecutionRequest
 * (zitadel.action.v2beta or v2) whose `targets` has the older object shape
 * into the current shape:
 *
 * - `{"target": "<id>"}` becomes the target ID `"<id>"` in `targets`;
 * - `{"include": <Condition>}` becomes `<Condition>` in `includes`, before the
 *   includes the request lists under `includes` already, if any;
 * - a plain string stays a target ID, so lists that mix both shapes work.
 *
 * The relative order of the targets, and that of the includes, is kept. What
 * cannot be kept is an include listed before a target: the current shape
 * always runs the execution's own targets first and its includes after them,
 * so `[{"include": A}, {"target": "x"}]` runs x, then the targets of A.
 * `reordered` reports this case.
 *
 * The JSON is returned unchanged (`converted` false) when `targets` is not a
 * list, holds only strings, or holds any entry that is neither a string nor an
 * object with exactly one key, `target` with a string or `include` with an
 * object, and when `includes` is present but not a list: the decoder then
 * rejects the request as it would without this function. The input is never
 * modified.
 */
export function convertLegacyExecutionTargets(json: JsonObject): LegacyExecutionTargetsConversion {
  const unchanged = { json, converted: false, reordered: false };
  const targets = json.targets;
  if (!Array.isArray(targets) || targets.every((t) => typeof t === "string")) {
    return unchanged;
  }
  const existingIncludes = json.includes;
  if (existingIncludes !== undefined && existingIncludes !== null && !Array.isArray(existingIncludes)) {
    return unchanged;
  }
  const ids: JsonValue[] = [];
  const includes: JsonValue[] = [];
  let reordered = false;
  for (const entry of targets) {
    if (typeof entry === "string") {
      if (includes.length > 0) reordered = true;
      ids.push(entry);
      continue;
    }
    if (!isObject(entry)) return unchanged;
    const keys = Object.keys(entry);
    if (keys.length !== 1) return unchanged;
    const target = entry.target;
    const include = entry.include;
    if (typeof target === "string") {
      if (includes.length > 0) reordered = true;
      ids.push(target);
    } else if (isObject(include)) {
      includes.push(include);
    } else {
      return unchanged;
    }
  }
  const out: JsonObject = { ...json, targets: ids };
  const allIncludes = [...includes, ...(Array.isArray(existingIncludes) ? existingIncludes : [])];
  if (allIncludes.length > 0) {
    out.includes = allIncludes;
  }
  return { json: out, converted: true, reordered };
}

/**
 * SetExecutionCompatOptions configures createSetExecutionCompatAdapter.
 */
export interface SetExecutionCompatOptions {
  /**
   * onConverted is called for each request whose older-shaped `targets` was
   * translated, with `reordered` true when an include preceded a target (see
   * convertLegacyExecutionTargets), for example to log a deprecation warning.
   * Default nothing.
   */
  readonly onConverted?: (method: DescMethod, reordered: boolean) => void;
}

/**
 * createSetExecutionCompatAdapter returns a RestRequestAdapter that accepts
 * the older object shape of `targets` in REST calls of SetExecution of
 * zitadel.action.v2beta.ActionService and zitadel.action.v2.ActionService (see
 * convertLegacyExecutionTargets for the rules and the one ordering
 * limitation). Requests in the current shape and requests of other methods
 * pass unchanged. Use it as (or among) the `adaptRequest` option of
 * createRestGateway or createNodeRouterHandler.
 */
export function createSetExecutionCompatAdapter(options: SetExecutionCompatOptions = {}): RestRequestAdapter {
  return (method, json) => {
    if (!setExecutionRequestTypes.has(method.input.typeName)) {
      return json;
    }
    const result = convertLegacyExecutionTargets(json);
    if (result.converted) {
      options.onConverted?.(method, result.reordered);
    }
    return result.json;
  };
}

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
