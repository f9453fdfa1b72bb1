import { create, type DescField, type DescMessage, type DescMethod, getOption, hasOption, type JsonObject, type JsonValue, ScalarType, toBinary } from "@bufbuild/protobuf";
import { base64Encode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  createAsyncIterable,
  readAllBytes,
  type UniversalHandler,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { codeFromHttpStatus, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { http as httpOption } from "../../gen/google/api/annotations_pb.js";
import { restStatusFromCode } from "../http-status.js";
import type { HttpRule } from "../../gen/google/api/http_pb.js";
import { defaultProtectedServices } from "../actions-interceptor.js";

/**
 * RestGatewayOptions configures createRestGateway.
 */
export interface RestGatewayOptions {
  /**
   * The handlers REST calls are dispatched to, typically `router.handlers` of
   * a ConnectRouter: every interceptor of the router runs for REST calls
   * exactly as for Connect, gRPC and gRPC-web calls. Unary methods with a
   * google.api.http option get REST routes; the others are ignored.
   */
  readonly handlers: readonly UniversalHandler[];
  /** Largest request body read, in bytes, default 4 MiB; a larger one is answered 413. */
  readonly readMaxBytes?: number;
  /**
   * Adapters of the request JSON of REST calls, applied in order after the
   * body, path variables and query parameters are merged and before the JSON
   * is decoded into the request message. Default none. See RestRequestAdapter.
   */
  readonly adaptRequest?: RestRequestAdapter | readonly RestRequestAdapter[];
  /**
   * Methods whose REST requests are strict: a body member or query parameter
   * that is not a field of the request (a typo, such as "interuptOnError")
   * is answered 400 (Code.InvalidArgument) naming it, instead of being
   * ignored as grpc-gateway does. Default: the methods of
   * defaultProtectedServices (the management API).
   */
  readonly strict?: (method: DescMethod) => boolean;
}

/**
 * RestRequestAdapter rewrites the JSON of a REST request before it is decoded,
 * for example to accept an older shape of a request that clients still send.
 * It receives the method called and the request as JSON (lowerCamelCase or
 * proto field names, exactly as merged from body, path and query) and returns
 * the JSON to decode: the same object, a changed one or a new one. Return the
 * JSON unchanged for requests the adapter does not know, so that malformed
 * requests are still rejected by the decoder.
 *
 * Adapters only see REST calls: Connect, gRPC and gRPC-web requests reach the
 * handlers as they were sent. An adapter that throws fails the call with
 * Code.InvalidArgument (HTTP 400) and the thrown message; one that returns
 * something other than a JSON object fails it with Code.Internal (HTTP 500).
 */
export type RestRequestAdapter = (method: DescMethod, json: JsonObject) => JsonObject;

/**
 * RestRoute is one REST binding of a method: an HTTP method and a path
 * template of a google.api.http rule (or one of its additional_bindings).
 */
export interface RestRoute {
  /** "GET", "POST", "PUT", "DELETE", "PATCH" or a custom verb. */
  readonly httpMethod: string;
  /** The path template, "/v2/users/{user_id}". */
  readonly path: string;
  /** The request field that is the body: "*" (all), a field path, or "" (none). */
  readonly body: string;
  readonly method: DescMethod;
}

/**
 * RestGateway transcodes REST calls (JSON over HTTP, per the methods'
 * google.api.http options) into Connect unary calls of the same handlers,
 * in process.
 */
export interface RestGateway {
  readonly routes: readonly RestRoute[];
  /**
   * handle answers one REST request: 200 and the response message as JSON,
   * or an error status (see restStatusFromCode) with the body
   * `{"code": <number>, "message": "...", "details": [...]}`; 404 for a path no
   * route has, 405 for a path routes have but not with this HTTP method.
   */
  handle(request: UniversalServerRequest): Promise<UniversalServerResponse>;
}

export { restStatusFromCode };

/** A segment of a compiled path template. */
type Segment = { readonly kind: "literal"; readonly value: string } | { readonly kind: "one" } | { readonly kind: "rest" };

interface Variable {
  readonly fieldPath: readonly string[];
  readonly start: number;
  /** Exclusive end, or -1 when the variable takes the rest of the path. */
  readonly end: number;
}

interface CompiledRoute extends RestRoute {
  readonly segments: readonly Segment[];
  readonly verb: string | undefined;
  readonly variables: readonly Variable[];
  readonly handler: UniversalHandler;
}

const segmentRank = { literal: 0, one: 1, rest: 2 } as const;

/**
 * createRestGateway returns a RestGateway for the handlers' google.api.http
 * rules. Path templates support literals, `*`, `**`, `{field.path}` and
 * `{field.path=pattern}` and a trailing `:verb`. The request message is built
 * as in grpc-gateway: the body (all of it for `body: "*"`, else into the named
 * field), path variables (percent-decoded, they win over the body), and, unless
 * the body is `*`, query parameters (`?a.b=1&list=x&list=y`, by proto or JSON
 * name; unknown ones are ignored). When several templates match a path, the
 * one with a literal at the first differing segment wins. The adapters of
 * `adaptRequest` then rewrite the request JSON before it is decoded.
 *
 * Throws a ConnectError with Code.InvalidArgument for a malformed template.
 */
export function createRestGateway(options: RestGatewayOptions): RestGateway {
  const readMaxBytes = options.readMaxBytes ?? 4 * 1024 * 1024;
  const adapters: readonly RestRequestAdapter[] =
    options.adaptRequest === undefined ? [] : typeof options.adaptRequest === "function" ? [options.adaptRequest] : options.adaptRequest;
  const strict = options.strict ?? ((method: DescMethod) => defaultProtectedServices.includes(method.parent.typeName));
  const routes: CompiledRoute[] = [];
  for (const handler of options.handlers) {
    const method = handler.method;
    if (method.methodKind !== "unary" || !hasOption(method, httpOption)) continue;
    const rule = getOption(method, httpOption);
    for (const binding of [rule, ...rule.additionalBindings]) {
      const route = compileRoute(binding, method, handler);
      if (route !== undefined) routes.push(route);
    }
  }

  const handle = async (request: UniversalServerRequest): Promise<UniversalServerResponse> => {
    const url = new URL(request.url);
    const httpMethod = request.method.toUpperCase();
    const matches: { route: CompiledRoute; params: Map<readonly string[], string> }[] = [];
    for (const route of routes) {
      const params = matchRoute(route, url.pathname);
      if (params !== undefined) matches.push({ route, params });
    }
    if (matches.length === 0) {
      return restErrorResponse(new ConnectError(`no REST route for ${url.pathname}`, Code.NotFound), 404);
    }
    const allowed = matches.filter((m) => m.route.httpMethod === httpMethod);
    if (allowed.length === 0) {
      const methods = [...new Set(matches.map((m) => m.route.httpMethod))].sort();
      const response = restErrorResponse(
        new ConnectError(`${httpMethod} is not allowed for ${url.pathname}, use ${methods.join(" or ")}`, Code.Unimplemented),
        405,
      );
      response.header!.set("allow", methods.join(", "));
      return response;
    }
    allowed.sort((a, b) => compareSpecificity(a.route, b.route));
    const { route, params } = allowed[0]!;
    let message: JsonObject;
    try {
      message = await buildRequestMessage(route, params, url.searchParams, request, readMaxBytes, strict(route.method));
    } catch (e) {
      if (e instanceof TooLarge) {
        return restErrorResponse(new ConnectError(e.message, Code.ResourceExhausted), 413);
      }
      return restErrorResponse(ConnectError.from(e));
    }
    try {
      message = adaptRequest(adapters, route.method, message);
      checkFields(route.method.input, message, "", strict(route.method));
    } catch (e) {
      return restErrorResponse(ConnectError.from(e));
    }
    return dispatch(route, message, request);
  };

  return {
    routes: routes.map(({ httpMethod, path, body, method }) => ({ httpMethod, path, body, method })),
    handle,
  };
}

class TooLarge extends Error {}

/**
 * adaptRequest runs the adapters over a request's JSON. Throws a ConnectError:
 * Code.InvalidArgument when an adapter throws, Code.Internal when one returns
 * something other than a JSON object.
 */
function adaptRequest(adapters: readonly RestRequestAdapter[], method: DescMethod, json: JsonObject): JsonObject {
  let current = json;
  for (const adapter of adapters) {
    let next: unknown;
    try {
      next = adapter(method, current);
    } catch (e) {
      const reason = e instanceof ConnectError ? e.rawMessage : e instanceof Error ? e.message : String(e);
      throw invalid(`request of ${method.parent.typeName}/${method.name} is not acceptable: ${reason}`);
    }
    if (typeof next !== "object" || next === null || Array.isArray(next)) {
      throw new ConnectError(`a REST request adapter returned no JSON object for ${method.parent.typeName}/${method.name}`, Code.Internal);
    }
    current = next as JsonObject;
  }
  return current;
}

function compileRoute(rule: HttpRule, method: DescMethod, handler: UniversalHandler): CompiledRoute | undefined {
  let httpMethod: string;
  let path: string;
  switch (rule.pattern.case) {
    case "get":
    case "put":
    case "post":
    case "delete":
    case "patch":
      httpMethod = rule.pattern.case.toUpperCase();
      path = rule.pattern.value;
      break;
    case "custom":
      httpMethod = rule.pattern.value.kind.toUpperCase();
      path = rule.pattern.value.path;
      break;
    default:
      return undefined;
  }
  const template = parseTemplate(path, method);
  if (rule.body !== "" && rule.body !== "*") {
    resolveFieldPath(method.input, rule.body.split("."), `body "${rule.body}" of ${method.name}`);
  }
  for (const variable of template.variables) {
    resolveFieldPath(method.input, variable.fieldPath, `path variable of ${method.name}`);
  }
  return { httpMethod, path, body: rule.body, method, handler, ...template };
}

function badTemplate(path: string, method: DescMethod, why: string): ConnectError {
  return new ConnectError(`google.api.http path "${path}" of ${method.parent.typeName}.${method.name}: ${why}`, Code.InvalidArgument);
}

/** parseTemplate compiles a google.api.http path template. */
function parseTemplate(path: string, method: DescMethod): Pick<CompiledRoute, "segments" | "verb" | "variables"> {
  if (!path.startsWith("/")) throw badTemplate(path, method, 'must start with "/"');
  const segments: Segment[] = [];
  const variables: Variable[] = [];
  let verb: string | undefined;
  let i = 1;
  const literalPattern = /^[^/{}*:=]+/;
  const readSegments = (inVariable: boolean): void => {
    for (;;) {
      const rest = path.slice(i);
      if (rest.startsWith("**")) {
        segments.push({ kind: "rest" });
        i += 2;
      } else if (rest.startsWith("*")) {
        segments.push({ kind: "one" });
        i += 1;
      } else if (rest.startsWith("{")) {
        if (inVariable) throw badTemplate(path, method, "variables cannot be nested");
        const close = path.indexOf("}", i);
        if (close < 0) throw badTemplate(path, method, 'missing "}"');
        const inner = path.slice(i + 1, close);
        const eq = inner.indexOf("=");
        const fieldPath = (eq < 0 ? inner : inner.slice(0, eq)).split(".");
        if (fieldPath.some((p) => !/^[A-Za-z_]\w*$/.test(p))) throw badTemplate(path, method, `bad field path "${inner}"`);
        const start = segments.length;
        if (eq < 0) {
          segments.push({ kind: "one" });
          i = close + 1;
        } else {
          i += 1 + eq + 1;
          readSegments(true);
          if (path[i] !== "}") throw badTemplate(path, method, 'missing "}"');
          i += 1;
        }
        const end = segments.at(-1)?.kind === "rest" ? -1 : segments.length;
        variables.push({ fieldPath, start, end });
      } else {
        const literal = literalPattern.exec(rest)?.[0];
        if (literal === undefined) throw badTemplate(path, method, `unexpected "${rest[0] ?? "end"}" at ${i}`);
        segments.push({ kind: "literal", value: literal });
        i += literal.length;
      }
      if (segments.at(-1)?.kind === "rest" && path[i] === "/") {
        throw badTemplate(path, method, '"**" must be the last segment');
      }
      if (path[i] !== "/") return;
      i += 1;
    }
  };
  readSegments(false);
  if (path[i] === ":") {
    verb = path.slice(i + 1);
    if (!/^[^/{}*:]+$/.test(verb)) throw badTemplate(path, method, "bad verb");
    i = path.length;
  }
  if (i !== path.length) throw badTemplate(path, method, `unexpected "${path.slice(i)}"`);
  return { segments, verb, variables };
}

/** matchRoute returns the path variables' values when the path matches the route. */
function matchRoute(route: CompiledRoute, pathname: string): Map<readonly string[], string> | undefined {
  let path = pathname;
  if (route.verb !== undefined) {
    if (!path.endsWith(":" + route.verb)) return undefined;
    path = path.slice(0, -route.verb.length - 1);
  }
  const raw = path.slice(1).split("/");
  let decoded: string[];
  try {
    decoded = raw.map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
  const { segments } = route;
  const last = segments.at(-1);
  if (last?.kind === "rest" ? decoded.length < segments.length - 1 : decoded.length !== segments.length) {
    return undefined;
  }
  for (let s = 0; s < segments.length; s++) {
    const segment = segments[s]!;
    if (segment.kind === "literal" && segment.value !== decoded[s]) return undefined;
    if (segment.kind === "one" && decoded[s] === "") return undefined;
  }
  const params = new Map<readonly string[], string>();
  for (const v of route.variables) {
    params.set(v.fieldPath, decoded.slice(v.start, v.end < 0 ? undefined : v.end).join("/"));
  }
  return params;
}

function compareSpecificity(a: CompiledRoute, b: CompiledRoute): number {
  const n = Math.max(a.segments.length, b.segments.length);
  for (let s = 0; s < n; s++) {
    const ra = a.segments[s] ? segmentRank[a.segments[s]!.kind] : -1;
    const rb = b.segments[s] ? segmentRank[b.segments[s]!.kind] : -1;
    if (ra !== rb) return ra - rb;
  }
  return 0;
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/**
 * resolveFieldPath returns the fields of a dotted path (proto or JSON names),
 * or throws a ConnectError with Code.InvalidArgument naming `what`.
 */
function resolveFieldPath(message: DescMessage, path: readonly string[], what: string): DescField[] {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const name of path) {
    const field: DescField | undefined = current?.fields.find((f) => f.name === name || f.jsonName === name);
    if (current === undefined || field === undefined) {
      throw invalid(`${what}: ${message.typeName} has no field "${path.join(".")}"`);
    }
    fields.push(field);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return fields;
}

/** findFieldPath is resolveFieldPath that returns undefined instead of throwing. */
function findFieldPath(message: DescMessage, path: readonly string[]): DescField[] | undefined {
  try {
    return resolveFieldPath(message, path, "");
  } catch {
    return undefined;
  }
}

/** jsonFromText converts the text of a path variable or query parameter to the JSON of a field. */
function jsonFromText(field: DescField, text: string, what: string): JsonValue {
  const scalar = field.fieldKind === "scalar" || field.fieldKind === "list" ? field.scalar : undefined;
  const isEnum = field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum");
  if (scalar === ScalarType.BOOL || (field.fieldKind === "message" && field.message.typeName === "google.protobuf.BoolValue")) {
    if (text === "true" || text === "false") return text === "true";
    throw invalid(`${what}: "${text}" is not a boolean`);
  }
  if (isEnum && /^-?\d+$/.test(text)) {
    return Number(text);
  }
  return text;
}

/** setJson puts `value` at the field path of a request's JSON object, replacing what was there. */
function setJson(target: JsonObject, fields: readonly DescField[], value: JsonValue, what: string): void {
  let object = target;
  fields.forEach((field, i) => {
    if (field.name !== field.jsonName) delete object[field.name];
    if (i === fields.length - 1) {
      object[field.jsonName] = value;
      return;
    }
    const next = object[field.jsonName];
    if (next === undefined || next === null) {
      object = object[field.jsonName] = {};
    } else if (typeof next === "object" && !Array.isArray(next)) {
      object = next;
    } else {
      throw invalid(`${what}: "${fields.slice(0, i + 1).map((f) => f.name).join(".")}" is not a message`);
    }
  });
}

async function readJsonBody(request: UniversalServerRequest, readMaxBytes: number): Promise<JsonValue | undefined> {
  const body = request.body;
  if (typeof body !== "object" || body === null || !(Symbol.asyncIterator in body)) {
    return body as JsonValue;
  }
  let bytes: Uint8Array;
  try {
    bytes = await readAllBytes(body as AsyncIterable<Uint8Array>, readMaxBytes, request.header.get("content-length"));
  } catch (e) {
    const error = ConnectError.from(e);
    if (error.code === Code.ResourceExhausted) {
      throw new TooLarge(`request body is larger than ${readMaxBytes} bytes`);
    }
    throw error;
  }
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "") return undefined;
  let json: JsonValue;
  try {
    json = JSON.parse(text) as JsonValue;
  } catch (e) {
    throw invalid(`request body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  checkJsonBody(json);
  return json;
}

/** durationJson is the JSON form of a google.protobuf.Duration: seconds and up to 9 decimal places, then "s". */
const durationJson = /^-?\d+(\.\d{1,9})?s$/;

/**
 * checkFields throws a ConnectError with Code.InvalidArgument naming the
 * field (its JSON path in the request, "timeout" or "a.b[2]") for a
 * google.protobuf.Duration in `json` that is not a valid JSON duration: not a
 * string, not seconds with at most 9 decimal places and an "s", or beyond
 * ±315,576,000,000 s. The decoder would refuse them too, with a message that
 * names neither the field nor what is wrong ("Invalid count value: -1" for
 * "1.0000000001s"). When `strict`, a member that is no field of its message
 * is refused too ("restWebhook.interuptOnError is not a field of ...").
 * Other fields are left to the decoder.
 */
export function checkFields(schema: DescMessage, json: JsonValue, path: string, strict: boolean): void {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return;
  for (const [key, value] of Object.entries(json)) {
    const field = schema.fields.find((f) => f.jsonName === key || f.name === key);
    if (field === undefined && strict) {
      throw invalid(`${path === "" ? key : `${path}.${key}`} is not a field of ${schema.typeName}${suggestion(schema, key)}`);
    }
    if (field === undefined || value === null) continue;
    const at = path === "" ? key : `${path}.${key}`;
    const message =
      field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message") || (field.fieldKind === "map" && field.mapKind === "message")
        ? field.message
        : undefined;
    if (message === undefined) continue;
    const each: [string, JsonValue][] =
      field.fieldKind === "list" && Array.isArray(value)
        ? value.map((v, i) => [`${at}[${i}]`, v])
        : field.fieldKind === "map" && typeof value === "object" && !Array.isArray(value)
          ? Object.entries(value).map(([k, v]) => [`${at}[${JSON.stringify(k)}]`, v])
          : [[at, value]];
    for (const [where, v] of each) {
      if (message.typeName === "google.protobuf.Duration") checkDuration(v, where);
      else if (!message.typeName.startsWith("google.protobuf.")) checkFields(message, v, where, strict);
    }
  }
}

/**
 * suggestion returns ' (did you mean "x"?)' when a field of `schema` is
 * spelled like `name` up to two edits or differs only in case, else "".
 */
function suggestion(schema: DescMessage, name: string): string {
  let best: { name: string; distance: number } | undefined;
  for (const f of schema.fields) {
    for (const candidate of new Set([f.jsonName, f.name])) {
      const distance = candidate.toLowerCase() === name.toLowerCase() ? 0 : editDistance(candidate, name, 2);
      if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name: f.jsonName, distance };
    }
  }
  return best === undefined ? "" : ` (did you mean "${best.name}"?)`;
}

/** editDistance returns the Levenshtein distance of `a` and `b`, or limit + 1 when it is larger than `limit`. */
function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** checkDuration throws Code.InvalidArgument naming `field` unless `value` is a valid JSON google.protobuf.Duration. */
function checkDuration(value: JsonValue, field: string): void {
  if (typeof value !== "string") throw invalid(`${field} must be a duration string such as "10s", got ${JSON.stringify(value)}`);
  if (!durationJson.test(value)) {
    throw invalid(`${field}: "${value}" is not a duration: seconds with at most 9 decimal places followed by "s", such as "10s" or "1.5s"`);
  }
  if (Math.abs(Number.parseFloat(value)) > 315_576_000_000) throw invalid(`${field}: "${value}" is out of range`);
}

/**
 * maxJsonDepth is how deeply arrays and objects may nest in a REST request
 * body: 100 levels, as protobuf parsers allow for messages.
 */
const maxJsonDepth = 100;

/**
 * checkJsonBody throws a ConnectError with Code.InvalidArgument for a parsed
 * body that cannot be passed on as JSON: nested deeper than maxJsonDepth
 * (re-encoding it would overflow the stack) or holding a number that JSON.parse
 * turned into an infinity (1e400), which re-encodes as null. It walks the
 * value without recursion, so any depth JSON.parse accepts is safe.
 */
function checkJsonBody(body: JsonValue): void {
  const pending: { value: JsonValue; depth: number }[] = [{ value: body, depth: 1 }];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value, depth } = next;
    if (typeof value === "number") {
      if (!Number.isFinite(value)) throw invalid("request body holds a number out of range");
      continue;
    }
    if (typeof value !== "object" || value === null) continue;
    if (depth > maxJsonDepth) {
      throw invalid(`request body is nested more than ${maxJsonDepth} levels deep`);
    }
    for (const child of Array.isArray(value) ? value : Object.values(value)) {
      pending.push({ value: child, depth: depth + 1 });
    }
  }
}

async function buildRequestMessage(
  route: CompiledRoute,
  params: Map<readonly string[], string>,
  query: URLSearchParams,
  request: UniversalServerRequest,
  readMaxBytes: number,
  strict: boolean,
): Promise<JsonObject> {
  const input = route.method.input;
  let message: JsonObject = {};
  if (route.body !== "") {
    const body = await readJsonBody(request, readMaxBytes);
    if (route.body === "*") {
      if (body !== undefined) {
        if (typeof body !== "object" || body === null || Array.isArray(body)) {
          throw invalid(`request body must be a JSON object (a ${input.typeName})`);
        }
        message = body;
      }
    } else if (body !== undefined) {
      setJson(message, resolveFieldPath(input, route.body.split("."), "body"), body, "body");
    }
  }
  const bound = new Set<string>();
  for (const [fieldPath, text] of params) {
    const fields = resolveFieldPath(input, fieldPath, "path");
    const what = `path variable "${fieldPath.join(".")}"`;
    const leaf = fields.at(-1)!;
    const value = jsonFromText(leaf, text, what);
    setJson(message, fields, leaf.fieldKind === "list" ? [value] : value, what);
    bound.add(fields.map((f) => f.name).join("."));
  }
  if (route.body === "*" && strict && [...query.keys()].length > 0) {
    throw invalid(`query parameter "${[...query.keys()][0]}" is not allowed: the request is the body`);
  }
  if (route.body !== "*") {
    const bodyPath = route.body === "" ? undefined : resolveFieldPath(input, route.body.split("."), "body").map((f) => f.name).join(".");
    const lists = new Map<string, { fields: DescField[]; values: JsonValue[] }>();
    for (const [key, text] of query) {
      const fields = findFieldPath(input, key.split("."));
      if (fields === undefined) {
        if (strict) throw invalid(`query parameter "${key}" is not a field of ${input.typeName}`);
        continue; // unknown query parameters are ignored, as grpc-gateway does
      }
      const protoPath = fields.map((f) => f.name).join(".");
      if (bound.has(protoPath) || (bodyPath !== undefined && (protoPath === bodyPath || protoPath.startsWith(bodyPath + ".")))) {
        continue;
      }
      const leaf = fields.at(-1)!;
      if (leaf.fieldKind === "map" || (leaf.fieldKind === "list" && leaf.listKind === "message")) continue;
      if (leaf.fieldKind === "message" && !leaf.message.typeName.startsWith("google.protobuf.")) continue;
      const value = jsonFromText(leaf, text, `query parameter "${key}"`);
      if (leaf.fieldKind === "list") {
        let entry = lists.get(protoPath);
        if (entry === undefined) lists.set(protoPath, (entry = { fields, values: [] }));
        entry.values.push(value);
      } else {
        setJson(message, fields, value, `query parameter "${key}"`);
      }
    }
    for (const { fields, values } of lists.values()) {
      setJson(message, fields, values, "query");
    }
  }
  return message;
}

// Headers that describe the REST request's own transport, not the call.
const droppedRequestHeaders = new Set([
  "accept-encoding",
  "connection",
  "content-encoding",
  "content-length",
  "content-type",
  "keep-alive",
  "te",
  "transfer-encoding",
  "upgrade",
]);

async function dispatch(route: CompiledRoute, message: JsonObject, request: UniversalServerRequest): Promise<UniversalServerResponse> {
  const header = new Headers();
  request.header.forEach((value, key) => {
    if (!droppedRequestHeaders.has(key) && !key.startsWith("connect-") && !key.startsWith("grpc-")) {
      header.set(key, value);
    }
  });
  header.set("content-type", "application/json");
  header.set("connect-protocol-version", "1");
  const bytes = new TextEncoder().encode(JSON.stringify(message));
  header.set("content-length", String(bytes.byteLength));
  const response = await route.handler({
    httpVersion: request.httpVersion,
    method: "POST",
    url: new URL(route.handler.requestPath, request.url).toString(),
    header,
    body: createAsyncIterable([bytes]),
    signal: request.signal,
    contextValues: request.contextValues,
  });
  const body = response.body === undefined ? new Uint8Array(0) : await readAllBytes(response.body, Number.MAX_SAFE_INTEGER);
  if (response.status === 200) {
    const out = new Headers(forwardedResponseHeaders(response.header));
    out.set("content-type", "application/json");
    out.set("content-length", String(body.byteLength));
    return { status: 200, header: out, body: createAsyncIterable([body]) };
  }
  const fallback = new ConnectError(`HTTP ${response.status}`, codeFromHttpStatus(response.status));
  const error = body.byteLength > 0 ? errorFromJsonBytes(body, undefined, fallback) : fallback;
  const out = restErrorResponse(error);
  for (const [key, value] of forwardedResponseHeaders(response.header)) {
    out.header!.set(key, value);
  }
  return out;
}

function forwardedResponseHeaders(header: Headers | undefined): [string, string][] {
  const out: [string, string][] = [];
  header?.forEach((value, key) => {
    if (
      !key.startsWith("connect-") &&
      !key.startsWith("grpc-") &&
      !key.startsWith("trailer-") &&
      key !== "content-type" &&
      key !== "content-length" &&
      key !== "content-encoding"
    ) {
      out.push([key, value]);
    }
  });
  return out;
}

/**
 * restErrorResponse answers an error as grpc-gateway does: the status of
 * restStatusFromCode (or `status`) and `{"code", "message", "details"}`.
 */
export function restErrorResponse(error: ConnectError, status = restStatusFromCode(error.code)): UniversalServerResponse {
  const details = error.details.map((d) => {
    if ("desc" in d) {
      return { "@type": `type.googleapis.com/${d.desc.typeName}`, value: base64Encode(toBinary(d.desc, create(d.desc, d.value))) };
    }
    return { "@type": `type.googleapis.com/${d.type}`, value: base64Encode(d.value) };
  });
  const body = new TextEncoder().encode(JSON.stringify({ code: error.code, message: error.rawMessage, details }));
  const header = new Headers({ "content-type": "application/json", "content-length": String(body.byteLength) });
  if (error.code === Code.Unauthenticated) {
    header.set("www-authenticate", "Bearer");
  }
  return { status, header, body: createAsyncIterable([body]) };
}
