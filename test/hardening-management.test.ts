// Issue 5, "bad input never hurts the service": a seeded, deterministic fuzzer of the management
// API of the sample server (REST under /v2beta and /v2, Connect JSON at the RPC paths). Every
// generated request must be answered within seconds with a success or a clear 4xx error, a
// failed request must leave the store exactly as it was, a successful write must change it as
// its method says, and the server must keep serving. Replay a failure with its seed and index.
import { type ChildProcess, spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";
import { createPrng, type Prng } from "./helpers/prng.js";

/** The seed; set FUZZ_SEED to explore other sequences (and FUZZ_BATCHES for longer runs). */
const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed_0005);
const BATCHES = Number(process.env.FUZZ_BATCHES ?? 12);
const PER_BATCH = 100;
const MiB = 1024 * 1024;

let h: SampleHarness;
let agent: http.Agent;
const prototypeKeys = (o: object) => Object.getOwnPropertyNames(o).sort().join(",");
const prototypesBefore = [Object.prototype, Array.prototype, Function.prototype].map(prototypeKeys);

beforeAll(async () => {
  h = await startSampleHarness();
  agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  // A baseline the fuzzer can aim at: two targets and two executions.
  const a = await h.server.store.createTarget({ name: "base-a", type: "webhook", endpoint: h.targets.endpoint("/a"), timeoutMs: 5000 });
  const b = await h.server.store.createTarget({ name: "base-b", type: "call", endpoint: h.targets.endpoint("/b"), timeoutMs: 5000 });
  await h.server.store.setExecution({ type: "request", service: "zitadel.user.v2.UserService" }, [{ target: a.id }]);
  await h.server.store.setExecution({ type: "event", group: "user.human" }, [{ target: b.id }]);
});
afterAll(async () => {
  agent.destroy();
  await h.close();
});

/** One HTTP request as the fuzzer sends it. */
interface FuzzRequest {
  /** What it calls: "rest CreateTarget", "connect ListTargets", ... */
  readonly what: string;
  readonly rpc: string | undefined;
  readonly transport: "rest" | "connect";
  readonly method: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer | undefined;
  /** Send the body chunked, without a content-length. */
  readonly chunked: boolean;
}

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** HTTP trailers: where gRPC over HTTP/1.1 puts its status. */
  readonly trailers: NodeJS.Dict<string>;
  readonly body: Buffer;
}

/** send makes one request with node:http (which, unlike fetch, sends paths exactly as given). */
function send(req: FuzzRequest, timeoutMs = 5000): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const url = new URL(h.server.url);
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body !== undefined) {
      if (req.chunked) headers["transfer-encoding"] = "chunked";
      else headers["content-length"] = req.body.length;
    }
    const r = http.request(
      { host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent, timeout: timeoutMs },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    r.on("timeout", () => r.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    r.on("error", reject);
    if (req.body !== undefined) r.write(req.body);
    r.end();
  });
}

/** The management methods: REST binding (under /{version}/actions) and a sensible request. */
interface Api {
  readonly rpc: string;
  readonly httpMethod: string;
  readonly path: string;
  readonly body: boolean;
  readonly write?: "create" | "update" | "delete" | "execution";
  readonly sample: (ids: readonly string[], g: Prng) => Record<string, unknown>;
}

const conditions = [
  { request: { method: "zitadel.user.v2.UserService/AddHumanUser" } },
  { response: { service: "zitadel.user.v2.UserService" } },
  { request: { all: true } },
  { event: { event: "user.human.added" } },
  { function: { name: "preuserinfo" } },
];

const apis: readonly Api[] = [
  {
    rpc: "CreateTarget", httpMethod: "POST", path: "/targets", body: true, write: "create",
    sample: (_, g) => ({
      name: `fuzz-${g.int(1e9)}`,
      [g.pick(["restWebhook", "restCall", "restAsync"])]: { interruptOnError: false },
      endpoint: h.targets.endpoint("/fuzz"),
      timeout: "5s",
    }),
  },
  {
    rpc: "UpdateTarget", httpMethod: "POST", path: "/targets/{id}", body: true, write: "update",
    sample: (ids, g) => ({ id: g.pick(ids), name: `fuzz-${g.int(1e9)}`, timeout: "3s" }),
  },
  { rpc: "DeleteTarget", httpMethod: "DELETE", path: "/targets/{id}", body: false, write: "delete", sample: (ids, g) => ({ id: g.pick(ids) }) },
  { rpc: "GetTarget", httpMethod: "GET", path: "/targets/{id}", body: false, sample: (ids, g) => ({ id: g.pick(ids) }) },
  {
    rpc: "ListTargets", httpMethod: "POST", path: "/targets/search", body: true,
    sample: () => ({
      pagination: { offset: "0", limit: 10, asc: true },
      sortingColumn: "TARGET_FIELD_NAME_NAME",
      filters: [{ targetNameFilter: { targetName: "base", method: "TEXT_FILTER_METHOD_STARTS_WITH" } }],
    }),
  },
  {
    rpc: "SetExecution", httpMethod: "PUT", path: "/executions", body: true, write: "execution",
    sample: (ids, g) => ({ condition: g.pick(conditions), targets: [g.pick(ids)] }),
  },
  {
    rpc: "ListExecutions", httpMethod: "POST", path: "/executions/search", body: true,
    sample: (ids, g) => ({ filters: [{ targetFilter: { targetId: g.pick(ids) } }], sortingColumn: "EXECUTION_FIELD_NAME_ID" }),
  },
  { rpc: "ListExecutionFunctions", httpMethod: "GET", path: "/executions/functions", body: false, sample: () => ({}) },
  { rpc: "ListExecutionMethods", httpMethod: "GET", path: "/executions/methods", body: false, sample: () => ({}) },
  { rpc: "ListExecutionServices", httpMethod: "GET", path: "/executions/services", body: false, sample: () => ({}) },
  {
    rpc: "ListTargetCalls", httpMethod: "POST", path: "/targets/calls/search", body: true,
    sample: (ids, g) => ({ targetId: g.pick(ids), failedOnly: true, since: "2020-01-01T00:00:00Z", pagination: { limit: 5 } }),
  },
  { rpc: "ListFailedEventDeliveries", httpMethod: "GET", path: "/events/failed", body: false, sample: () => ({ limit: 5 }) },
  { rpc: "ExplainExecution", httpMethod: "POST", path: "/executions/explain", body: true, sample: (_, g) => ({ condition: g.pick(conditions) }) },
  {
    rpc: "TestTarget", httpMethod: "POST", path: "/targets/{id}/test", body: true,
    sample: (ids, g) => ({ id: g.pick(ids), condition: g.pick([conditions[0], { event: { event: "user.human.added" } }, { function: { name: "preuserinfo" } }]) }),
  },
  {
    rpc: "RetryFailedEventDeliveries", httpMethod: "POST", path: "/events/failed/retry", body: true,
    sample: (ids, g) => ({ targetId: g.pick(ids), eventType: "user.human.added" }),
  },
];

/** Strings that have broken services before. */
const hostileStrings = (g: Prng): string[] => [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\u0001\u0002\u0003\u001f\u007f",
  "line\r\nX-Injected: 1",
  "\ud800",
  "\udc00x",
  "x\ud83d",
  "\u202eevil\u202c",
  "zero\u200bwidth\u200d",
  "\ufeffbom",
  "'; DROP TABLE targets; --",
  "\" OR 1=1 --",
  "1; SELECT pg_sleep(10)",
  "__proto__",
  "constructor",
  "prototype",
  "../../../../etc/passwd",
  "..%2F..%2Fetc%2Fpasswd",
  "%00",
  "%s%s%s%n",
  "${jndi:ldap://x/a}",
  "<script>alert(1)</script>",
  "🦄".repeat(g.between(1, 50)),
  "x".repeat(g.pick([201, 1001, 2049, 70_000])),
  "é".repeat(g.between(100, 3000)),
  "NaN",
  "Infinity",
  "-0",
  "1e400",
  "99999999999999999999999999",
];

const hostileKeys = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf", "", "\u0000", "a.b", "@type"];

/** A JSON text for `value` where any string may contain lone surrogates (JSON.stringify escapes them). */
const text = (value: unknown) => JSON.stringify(value) ?? "null";

/** Random JSON values of every type, including ones of the wrong type for any field. */
function wrongValue(g: Prng): unknown {
  return g.pick<() => unknown>([
    () => null,
    () => true,
    () => g.between(-5, 5),
    () => 2 ** 53 + 1,
    () => -1,
    () => 0.5,
    () => g.pick(hostileStrings(g)),
    () => [],
    () => [g.pick(hostileStrings(g)), 1, null],
    () => ({}),
    () => ({ [g.pick(hostileKeys)]: g.pick(hostileStrings(g)) }),
  ])();
}

/** Replaces, at a random place in the JSON, a value with `replacement` (or adds a key when it is empty). */
function mutateValue(g: Prng, value: unknown, replace: (g: Prng) => unknown, depth = 0): unknown {
  if (Array.isArray(value)) {
    if (value.length === 0 || g.chance(0.3)) return replace(g);
    const i = g.int(value.length);
    return value.map((v, j) => (j === i ? mutateValue(g, v, replace, depth + 1) : v));
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length === 0 || (depth > 0 && g.chance(0.3))) return replace(g);
    const key = g.pick(keys);
    return { ...value, [key]: mutateValue(g, (value as Record<string, unknown>)[key], replace, depth + 1) };
  }
  return replace(g);
}

const hugeNumbers = ["1e400", "-1e400", "123456789012345678901234567890", "1e-400", "-0", "9007199254740993", "0.1", "1E5", "4294967296"];
const notNumbers = ["NaN", "Infinity", "-Infinity", "undefined", "0x10", "01", "+1", ".5"];

/** The JSON text of `json` with one value replaced by one of `tokens`, written as is. */
function numberToken(g: Prng, json: Record<string, unknown>, tokens: readonly string[]): string {
  return text(mutateValue(g, json, () => 0)).replace(/(:|\[)0(?=[,}\]])/, `$1${g.pick(tokens)}`);
}

/** Wraps a JSON text in `n` levels of arrays or objects. */
function nest(g: Prng, inner: string, n: number): string {
  return g.chance(0.5) ? "[".repeat(n) + inner + "]".repeat(n) : '{"a":'.repeat(n) + inner + "}".repeat(n);
}

/** Body mutations: each returns the raw bytes to send. */
const bodyMutations: [string, (g: Prng, json: Record<string, unknown>) => Buffer | undefined][] = [
  ["as is", (_, j) => Buffer.from(text(j))],
  ["truncated", (g, j) => { const t = text(j); return Buffer.from(t.slice(0, g.int(Math.max(1, t.length - 1)))); }],
  ["trailing garbage", (g, j) => Buffer.from(text(j) + g.pick(["}", "]", ",", "x", " {}", "\u0000", "garbage", "{}{}", "//"]))],
  ["wrong type in a field", (g, j) => Buffer.from(text(mutateValue(g, j, wrongValue)))],
  ["hostile string in a field", (g, j) => Buffer.from(text(mutateValue(g, j, (g2) => g2.pick(hostileStrings(g2)))))],
  ["hostile key", (g, j) => Buffer.from(text(j).replace(/^\{/, `{${text(g.pick(hostileKeys))}:${text(wrongValue(g))},`).replace(/,}$/, "}"))],
  ["prototype pollution", (g) => Buffer.from(g.pick([
    '{"__proto__":{"polluted":"yes"}}',
    '{"constructor":{"prototype":{"polluted":"yes"}}}',
    '{"name":"p","__proto__":{"isAdmin":true},"restWebhook":{"__proto__":{"polluted":"yes"}}}',
    '{"condition":{"__proto__":{"request":{"all":true}}},"targets":["__proto__"]}',
    '{"filters":[{"__proto__":{"polluted":"yes"}}]}',
  ]))],
  ["array for the object", (g, j) => Buffer.from(g.chance(0.5) ? text([j]) : text(mutateValue(g, j, () => [])))],
  ["not an object at all", (g) => Buffer.from(g.pick(["42", '"str"', "null", "true", "[]", "-0", "1e400"]))],
  ["huge number", (g, j) => Buffer.from(numberToken(g, j, hugeNumbers))],
  ["NaN-like token", (g, j) => Buffer.from(numberToken(g, j, notNumbers))],
  ["deeply nested", (g, j) => {
    const depth = g.pick([50, 101, 1000, 100_000]);
    return Buffer.from(text({ ...j, nested: 0 }).replace('"nested":0', `"nested":${nest(g, "0", depth)}`));
  }],
  ["deeply nested body", (g) => Buffer.from(nest(g, "{}", g.pick([101, 10_000, 100_000])))],
  ["duplicate keys", (g, j) => Buffer.from(text(j).replace(/^\{"(\w+)":/, (m, k: string) => `{"${k}":${text(wrongValue(g))},"${k}":`))],
  ["byte order mark", (_, j) => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text(j))])],
  ["invalid UTF-8", (g, j) => {
    const t = Buffer.from(text(mutateValue(g, j, () => "@@")));
    const at = t.indexOf("@@");
    const bad = Buffer.from(g.pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xe2, 0x82]]));
    return at < 0 ? Buffer.concat([t, bad]) : Buffer.concat([t.subarray(0, at), bad, t.subarray(at + 2)]);
  }],
  ["empty", (g) => g.pick([Buffer.alloc(0), Buffer.from("   \n\t"), undefined])],
  ["random bytes", (g) => g.bytes(g.between(1, 2000))],
  ["UTF-16 text", (_, j) => Buffer.from(text(j), "utf16le")],
];

const contentTypes = [
  "text/plain",
  "application/x-www-form-urlencoded",
  "",
  "multipart/form-data; boundary=x",
  "application/json; charset=utf-16",
  "application/xml",
  "application/grpc",
  "application/grpc-web+json",
];

/** Path variables that try to get out of their segment or break decoding. */
const hostileIds = [
  "..", "../..", "%2e%2e", "%2e%2e%2f%2e%2e", "..%2F..%2Fv2%2Factions%2Ftargets", "%2F", "a%2Fb", "%00", "%0d%0aX-Injected:%201",
  "%ff", "%ED%A0%80", "%E0%A4%A", "__proto__", "constructor", "prototype", "%F0%9F%A6%84", "x".repeat(201), "9".repeat(5000),
  "%20", "*", "1;DROP%20TABLE%20targets", "%252F", "%u002e",
];

/** Percent-encodes every byte of the UTF-8 form of `s` but letters and digits (lone surrogates become U+FFFD). */
const percent = (s: string) =>
  [...Buffer.from(s, "utf8")]
    .map((b) => (/[A-Za-z0-9]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, "0")}`))
    .join("");

function generate(g: Prng, ids: readonly string[]): FuzzRequest {
  const api = g.pick(apis);
  const version = g.pick(["v2beta", "v2"]);
  const transport = g.chance(0.65) ? "rest" : "connect";
  const json = api.sample(ids.length > 0 ? ids : ["1"], g);
  const headers: Record<string, string> = { authorization: `Bearer ${h.server.adminToken}`, "content-type": "application/json" };
  // Authorization: usually right, sometimes missing or malformed.
  if (g.chance(0.05)) {
    const auth = g.pick([undefined, "Bearer", "Bearer ", "Basic abc", `Bearer ${h.server.adminToken}x`, `Bearer ${"t".repeat(8000)}`, "Bearer \u00e9"]);
    if (auth === undefined) delete headers.authorization;
    else headers.authorization = auth;
  }
  if (g.chance(0.08)) headers["content-type"] = g.pick(contentTypes);
  const [mutation, mutate] = g.chance(0.15) ? bodyMutations[0]! : g.pick(bodyMutations);
  let body: Buffer | undefined;
  let method: string;
  let path: string;
  if (transport === "connect") {
    method = g.chance(0.03) ? g.pick(["GET", "PUT", "DELETE", "PATCH"]) : "POST";
    path = `/zitadel.action.${version}.ActionService/${api.rpc}`;
    body = mutate(g, json);
  } else {
    method = g.chance(0.04) ? g.pick(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]) : api.httpMethod;
    let id = String(json.id ?? "");
    if (g.chance(0.5)) id = g.pick(hostileIds);
    path = `/${version}/actions${api.path.replace("{id}", id)}`;
    if (g.chance(0.03)) {
      path = g.pick([path + "/", path.replace("/actions/", "//actions/"), path + "/extra", path.toUpperCase(), `/${version}/actions/../actions${api.path}`]);
    }
    if (api.body) {
      const { id: _id, ...rest } = json;
      body = mutate(g, rest);
    } else if (g.chance(0.3)) {
      // GET and DELETE: hostile query parameters (unknown ones are ignored, known ones are typed).
      const key = g.pick(["limit", "__proto__", "constructor.prototype.polluted", "id", "limit.x", "a[b]", "%00", "%ED%A0%80", "%ff"]);
      path += `?${key}=${percent(g.pick(hostileStrings(g)).slice(0, 300))}&limit=${g.pick(["5", "-1", "abc", "1e3", "99999999999", ""])}`;
    } else if (api.rpc === "ListFailedEventDeliveries") {
      path += "?limit=5";
    }
  }
  // The method called: another HTTP method on the same REST path may be another RPC (GET, POST or DELETE /targets/{id}).
  const rpc = transport === "rest" && method !== api.httpMethod ? apis.find((a) => a.path === api.path && a.httpMethod === method)?.rpc : api.rpc;
  return { what: `${transport} ${rpc ?? "-"} (${mutation})`, rpc, transport, method, path, headers, body, chunked: g.chance(0.1) };
}

/** A view of the store to compare: targets and executions by ID, serialized. */
interface StoreView {
  readonly targets: Map<string, string>;
  readonly executions: Map<string, string>;
  /** listTargets, listExecutions and snapshot, serialized together. */
  readonly all: string;
}

async function view(): Promise<StoreView> {
  const store = h.server.store;
  const [targets, executions, snapshot] = await Promise.all([store.listTargets(), store.listExecutions(), store.snapshot()]);
  return {
    targets: new Map(targets.map((t) => [t.id, JSON.stringify(t)])),
    executions: new Map(executions.map((e) => [e.id, JSON.stringify(e)])),
    all: JSON.stringify({ targets, executions, snapshot }),
  };
}

/** What changed between two views of the targets. */
function diff(before: Map<string, string>, after: Map<string, string>) {
  const added = [...after.keys()].filter((k) => !before.has(k));
  const removed = [...before.keys()].filter((k) => !after.has(k));
  const changed = [...after.keys()].filter((k) => before.has(k) && before.get(k) !== after.get(k));
  return { added, removed, changed };
}

/** Checks an answer: the reasons it is not acceptable, none when it is. */
function judge(req: FuzzRequest, answer: Answer): string[] {
  const problems: string[] = [];
  const { status } = answer;
  if (status >= 500) problems.push(`status ${status}`);
  const type = String(answer.headers["content-type"] ?? "");
  if (type.startsWith("application/grpc")) {
    // The gRPC protocols answer 200 and put the error in grpc-status.
    // gRPC-web sends its trailers in the body: a frame with flag 0x80.
    const grpcStatus =
      answer.headers["grpc-status"] ?? answer.trailers["grpc-status"] ?? /grpc-status: ?(\d+)/.exec(answer.body.toString("latin1"))?.[1];
    if (status !== 200 || grpcStatus === undefined || grpcStatus === "0") {
      problems.push(`gRPC answer without an error status (${status}, grpc-status ${String(grpcStatus)})`);
    }
    return problems;
  }
  let json: unknown;
  try {
    json = answer.body.length === 0 ? undefined : JSON.parse(answer.body.toString("utf8"));
  } catch {
    problems.push("answer body is not JSON");
  }
  if (status >= 200 && status < 300) {
    if (req.method !== "HEAD" && (typeof json !== "object" || json === null)) problems.push("success without a JSON object");
    return problems;
  }
  if (status < 400) {
    problems.push(`status ${status}`);
    return problems;
  }
  // The Connect protocol answers 405 and 415 without a body; HEAD answers have none.
  const bodyless = req.method === "HEAD" || (req.transport === "connect" && (status === 405 || status === 415));
  if (bodyless && answer.body.length === 0) return problems;
  const error = json as { code?: unknown; message?: unknown } | undefined;
  const codeOk = req.transport === "rest" || !req.path.startsWith("/zitadel.") ? typeof error?.code === "number" : typeof error?.code === "string";
  if (!codeOk || typeof error?.message !== "string") problems.push("error without {code, message}");
  return problems;
}

/** Checks that the store changed as a successful request of `rpc` may change it, and not at all otherwise. */
function account(rpc: string | undefined, ok: boolean, before: StoreView, after: StoreView): string | undefined {
  const api = apis.find((a) => a.rpc === rpc);
  if (!ok || api?.write === undefined) {
    return before.all === after.all ? undefined : `store changed by a ${ok ? "read" : "failed request"}`;
  }
  const t = diff(before.targets, after.targets);
  const executionsSame = diff(before.executions, after.executions);
  const sameExecutions = executionsSame.added.length + executionsSame.removed.length + executionsSame.changed.length === 0;
  const shape = `targets +${t.added.length} -${t.removed.length} ~${t.changed.length}, executions same: ${sameExecutions}`;
  switch (api.write) {
    case "create":
      return t.added.length === 1 && t.removed.length === 0 && t.changed.length === 0 && sameExecutions ? undefined : `create: ${shape}`;
    case "update":
      return t.added.length === 0 && t.removed.length === 0 && t.changed.length <= 1 && sameExecutions ? undefined : `update: ${shape}`;
    case "delete":
      return t.added.length === 0 && t.removed.length <= 1 && t.changed.length === 0 && (t.removed.length === 1 || sameExecutions)
        ? undefined
        : `delete: ${shape}`;
    case "execution":
      return t.added.length + t.removed.length + t.changed.length === 0 ? undefined : `set execution: ${shape}`;
  }
}

function describeRequest(seed: number, index: number, req: FuzzRequest): string {
  const body = req.body === undefined ? "(none)" : JSON.stringify(req.body.subarray(0, 120).toString("latin1"));
  return `seed ${seed} #${index} ${req.what}: ${req.method} ${req.path.slice(0, 120)} content-type=${JSON.stringify(req.headers["content-type"])} ` +
    `body[${req.body?.length ?? 0}]=${body}`;
}

/** A normal RPC over Connect and one over REST: the server still serves. */
async function expectServing(): Promise<void> {
  const client = h.actions("v2", "connect");
  expect((await client.listExecutionServices({})).services).toContain("zitadel.user.v2.UserService");
  const rest = await h.rest("GET", "/v2beta/actions/executions/methods", undefined, h.auth);
  expect(rest.status).toBe(200);
  expect((await h.actions("v2beta", "grpc").listTargets({ pagination: { limit: 1 } })).pagination?.appliedLimit).toBe(1n);
}

describe("fuzzing the management API", () => {
  it(`answers ${BATCHES * PER_BATCH} generated requests with successes or clear 4xx errors, and only successes change the store`, async () => {
    const g = createPrng(SEED);
    const problems: string[] = [];
    const tally = new Map<string, number>();
    for (let batch = 0; batch < BATCHES; batch++) {
      for (let i = 0; i < PER_BATCH; i++) {
        const index = batch * PER_BATCH + i;
        const before = await view();
        const req = generate(g, [...before.targets.keys()]);
        let answer: Answer;
        try {
          answer = await send(req);
        } catch (e) {
          problems.push(`${describeRequest(SEED, index, req)} -> ${e instanceof Error ? e.message : String(e)}`);
          continue;
        }
        const verdict = judge(req, answer);
        const after = await view();
        const ok = answer.status >= 200 && answer.status < 300 && !String(answer.headers["content-type"]).startsWith("application/grpc");
        const accounting = account(req.rpc, ok, before, after);
        if (accounting !== undefined) verdict.push(accounting);
        if (verdict.length > 0) {
          problems.push(`${describeRequest(SEED, index, req)} -> ${answer.status} ${answer.body.subarray(0, 200).toString()}: ${verdict.join("; ")}`);
        }
        const key = ok ? "2xx" : String(answer.status);
        tally.set(key, (tally.get(key) ?? 0) + 1);
      }
      await expectServing();
    }
    if (process.env.FUZZ_TALLY !== undefined) console.log(SEED, Object.fromEntries([...tally].sort()));
    expect(problems.slice(0, 10)).toEqual([]);
    // The generator reaches both successes and many kinds of errors.
    expect(tally.get("2xx") ?? 0).toBeGreaterThan(20);
    for (const status of ["400", "401", "404", "405", "415"]) expect(tally.get(status) ?? 0, `answers ${status}`).toBeGreaterThan(0);
    // Nothing failed on the server's side: the sample logs every handler that throws.
    expect(h.logs.filter((l) => l.level === "error")).toEqual([]);
  }, 120_000);

  it("answers 413 to REST bodies over 4 MiB, sized or chunked, and stores nothing", async () => {
    const before = await view();
    for (const chunked of [false, true]) {
      for (const path of ["/v2/actions/targets", "/v2beta/actions/targets", "/v2/actions/executions"]) {
        const body = Buffer.from(JSON.stringify({ name: "x".repeat(4 * MiB), restWebhook: {}, endpoint: "http://127.0.0.1/", timeout: "1s" }));
        const answer = await send({
          what: "oversized", rpc: undefined, transport: "rest", method: path.endsWith("executions") ? "PUT" : "POST", path,
          headers: { authorization: `Bearer ${h.server.adminToken}`, "content-type": "application/json" }, body, chunked,
        });
        expect(answer.status, `${path} chunked=${chunked}`).toBe(413);
        expect(JSON.parse(answer.body.toString())).toMatchObject({ code: Code.ResourceExhausted, message: expect.stringMatching(/larger than 4194304 bytes/) });
      }
    }
    expect((await view()).all).toBe(before.all);
    await expectServing();
  });

  it("rejects bodies nested deeper than 100 levels and numbers that overflow, over REST, with 400", async () => {
    // Regression: both used to reach JSON.stringify in the gateway, which overflowed the stack (500) or wrote null.
    const before = await view();
    const cases: [string, string][] = [
      ["/v2/actions/targets", `{"name":${"[".repeat(100_000)}${"]".repeat(100_000)}}`],
      ["/v2beta/actions/targets", `{"name":"n","endpoint":${'{"a":'.repeat(5000)}1${"}".repeat(5000)}}`],
      ["/v2/actions/targets/search", `{"pagination":{"offset":1e400}}`],
      ["/v2/actions/targets/search", `{"pagination":{"limit":-1e999}}`],
    ];
    for (const [path, body] of cases) {
      const answer = await h.rest("POST", path, body, h.auth);
      expect(answer.status, body.slice(0, 40)).toBe(400);
      expect(answer.json).toMatchObject({ code: Code.InvalidArgument, message: expect.stringMatching(/nested more than 100 levels|number out of range/) });
    }
    // 100 levels are still fine for the gateway: the decoder then judges the fields, and refuses the unknown one.
    const fine = await h.rest("POST", "/v2/actions/targets/search", `{"pagination":{"limit":1},"x":${"[".repeat(99)}${"]".repeat(99)}}`, h.auth);
    expect(fine.status).toBe(400);
    expect(fine.json.message).not.toMatch(/nested more than 100 levels/);
    expect(fine.json.message).toMatch(/^x is not a field of zitadel\.action\.v2\.ListTargetsRequest/);
    expect((await view()).all).toBe(before.all);
  });

  it("leaves Object.prototype, Array.prototype and Function.prototype unpolluted", () => {
    expect([Object.prototype, Array.prototype, Function.prototype].map(prototypeKeys)).toEqual(prototypesBefore);
    const probe = {} as Record<string, unknown>;
    for (const key of ["polluted", "isAdmin", "request"]) expect(probe[key], key).toBeUndefined();
  });
});

/** Sends raw bytes on a new connection and resolves what came back before the connection closed. */
function rawExchange(port: number, request: string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    const socket = net.connect(port, "127.0.0.1", () => socket.write(request));
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on("data", (d: Buffer) => (out += d.toString("latin1")));
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

// Bugs this fuzzing found: a missing or malformed Host ended the process, and Connect
// bodies had no size limit (both fixed). The malformed-protobuf case is the behaviour of
// @connectrpc/connect itself; `it.fails` keeps it visible and turns red once it changes.
describe("bugs found by fuzzing", () => {
  describe("a request with a missing or malformed Host header", () => {
    const root = fileURLToPath(new URL("..", import.meta.url));
    let child: ChildProcess;
    let port: number;

    // The sample server runs in a child process: the bug kills the process that serves.
    beforeEach(async () => {
      child = spawn(process.execPath, ["--import", "tsx", "src/sample/main.ts"], {
        cwd: root,
        // An empty DATABASE_URL keeps everything in memory.
        env: { ...process.env, PORT: "0", HOST: "127.0.0.1", ACTIONS_ADMIN_TOKEN: "known-bug-token", LOG_LEVEL: "info", DATABASE_URL: "" },
        stdio: ["ignore", "ignore", "pipe"],
      });
      port = await new Promise<number>((resolve, reject) => {
        let seen = "";
        const timer = setTimeout(() => reject(new Error(`the sample server did not start: ${seen}`)), 20_000);
        child.stderr!.on("data", (d: Buffer) => {
          seen += d.toString();
          const url = /"msg":"sample server listening","url":"(http:[^"]+)"/.exec(seen)?.[1];
          if (url !== undefined) {
            clearTimeout(timer);
            resolve(Number(new URL(url).port));
          }
        });
        child.once("exit", (code) => reject(new Error(`the sample server exited with ${code}: ${seen}`)));
      });
      const ok = await rawExchange(
        port,
        "GET /v2/actions/executions/functions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer known-bug-token\r\nConnection: close\r\n\r\n",
      );
      expect(ok).toMatch(/^HTTP\/1\.1 200 /);
    }, 30_000);
    afterEach(() => {
      if (child.exitCode === null) child.kill();
    });

    // universalRequestFromNodeRequest throws for a request without an authority (HTTP/1.0
    // needs no Host) or with a Host that is not a valid URL authority; the exception used to
    // escape the request listener, so one unauthenticated request ended the process.
    it.each([
      ["an HTTP/1.0 request without Host", "GET /v2/actions/executions/functions HTTP/1.0\r\n\r\n"],
      ["a Host with a space", "GET /v2/actions/executions/functions HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n"],
    ])("answers %s with 400 and keeps serving", async (_, request) => {
      const answer = await rawExchange(port, request);
      expect(answer).toMatch(/^HTTP\/1\.[01] 400 /);
      expect(child.exitCode).toBeNull();
    });
  });

  // Bug (@connectrpc/connect 2.1.2): a request body that is not valid protobuf is
  // Code.Internal ("parse binary: ..."), HTTP 500, where a malformed request should be
  // Code.InvalidArgument, HTTP 400, as malformed JSON is.
  it.fails("answers a Connect request whose protobuf body is malformed with 400", async () => {
    const answer = await send({
      what: "malformed protobuf", rpc: "ListTargets", transport: "connect", method: "POST",
      path: "/zitadel.action.v2.ActionService/ListTargets",
      headers: { authorization: `Bearer ${h.server.adminToken}`, "content-type": "application/proto" }, body: Buffer.from('{"a":1}'), chunked: false,
    });
    expect(answer.status).toBe(400);
  });

  // The Connect router had no readMaxBytes, so Connect, gRPC and gRPC-web requests could be
  // up to 4 GiB after decompression: a 65 KiB gzip body inflated to 64 MiB and was parsed
  // (before authentication) where the REST gateway refuses anything over 4 MiB.
  it("refuses a Connect body that inflates to over 4 MiB, as the REST gateway does", async () => {
    const plain = Buffer.alloc(64 * MiB, 0x20);
    plain.write('{"name":"', 0);
    plain.write('"}', plain.length - 2);
    const answer = await send({
      what: "gzip bomb", rpc: "CreateTarget", transport: "connect", method: "POST",
      path: "/zitadel.action.v2.ActionService/CreateTarget",
      headers: { "content-type": "application/json", "content-encoding": "gzip" }, body: gzipSync(plain), chunked: false,
    });
    expect(JSON.parse(answer.body.toString())).toMatchObject({ code: "resource_exhausted" });
  });
});
