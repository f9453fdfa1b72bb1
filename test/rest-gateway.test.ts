import { create, createFileRegistry, type DescMethodUnary, type DescService, type MessageInitShape, setExtension } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, createConnectRouter } from "@connectrpc/connect";
import { createAsyncIterable, readAllBytes } from "@connectrpc/connect/protocol";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { http } from "../gen/google/api/annotations_pb.js";
import { HttpRuleSchema } from "../gen/google/api/http_pb.js";
import { createRestGateway, restStatusFromCode } from "../src/management/rest-gateway.js";
import { addUser } from "./helpers/intercepted-server.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";
import { clearStore } from "./helpers/clear-store.js";

let h: SampleHarness;
beforeAll(async () => {
  h = await startSampleHarness();
});
afterAll(async () => {
  await h.close();
});
beforeEach(async () => {
  await clearStore(h.server.store);
  h.targets.calls.length = 0;
  h.records.length = 0;
});

const target = (name: string, path = "/hook") => ({
  name,
  restWebhook: { interruptOnError: true },
  endpoint: h.targets.endpoint(path),
  timeout: "10s",
});

describe.each(["v2beta", "v2"])("REST paths under /%s", (version) => {
  const base = `/${version}/actions`;

  it("serve every ActionService RPC", async () => {
    const created = await h.rest("POST", `${base}/targets`, target("rest"), h.auth);
    expect(created.status).toBe(200);
    expect(created.headers.get("content-type")).toBe("application/json");
    expect(created.json).toEqual({ id: expect.stringMatching(/^\d+$/), creationDate: expect.any(String), signingKey: expect.any(String) });
    const id = created.json.id as string;

    const got = await h.rest("GET", `${base}/targets/${id}`, undefined, h.auth);
    expect(got.status).toBe(200);
    expect(got.json.target).toMatchObject({ id, name: "rest", restWebhook: { interruptOnError: true }, timeout: "10s" });
    // zitadel.action.v2beta has no payload type, as in ZITADEL.
    expect(got.json.target.payloadType).toBe(version === "v2" ? "PAYLOAD_TYPE_JSON" : undefined);

    const updated = await h.rest("POST", `${base}/targets/${id}`, { name: "rest 2", timeout: "2.5s", expirationSigningKey: "0s" }, h.auth);
    expect(updated.status).toBe(200);
    expect(updated.json.signingKey).toMatch(/^[A-Za-z0-9]{36}$/);
    expect((await h.server.store.getTarget(id))).toMatchObject({ name: "rest 2", timeoutMs: 2500 });

    const searched = await h.rest(
      "POST",
      `${base}/targets/search`,
      { pagination: { limit: 10, asc: true }, sortingColumn: "TARGET_FIELD_NAME_NAME", filters: [{ targetNameFilter: { targetName: "REST", method: "TEXT_FILTER_METHOD_STARTS_WITH_IGNORE_CASE" } }] },
      h.auth,
    );
    expect(searched.status).toBe(200);
    expect(searched.json.pagination).toEqual({ totalResult: "1", appliedLimit: "10" });
    expect(searched.json.targets.map((t: { id: string }) => t.id)).toEqual([id]);

    const set = await h.rest(
      "PUT",
      `${base}/executions`,
      { condition: { request: { service: "zitadel.user.v2.UserService" } }, targets: [id] },
      h.auth,
    );
    expect(set.status).toBe(200);
    expect(set.json.setDate).toEqual(expect.any(String));
    const withInclude = await h.rest(
      "PUT",
      `${base}/executions`,
      { condition: { request: { method: "zitadel.user.v2.UserService/ListUsers" } }, includes: [{ request: { service: "zitadel.user.v2.UserService" } }] },
      h.auth,
    );
    expect(withInclude.status).toBe(200);

    const executions = await h.rest("POST", `${base}/executions/search`, { filters: [{ targetFilter: { targetId: id } }] }, h.auth);
    expect(executions.status).toBe(200);
    expect(executions.json.executions).toEqual([
      expect.objectContaining({ condition: { request: { service: "zitadel.user.v2.UserService" } }, targets: [id] }),
    ]);
    const all = await h.rest("POST", `${base}/executions/search`, undefined, h.auth);
    expect(all.json.pagination.totalResult).toBe("2");
    expect(all.json.executions[0]).toMatchObject({
      condition: { request: { method: "/zitadel.user.v2.UserService/ListUsers" } },
      includes: [{ request: { service: "zitadel.user.v2.UserService" } }],
    });

    expect((await h.rest("GET", `${base}/executions/functions`, undefined, h.auth)).json).toEqual({
      functions: ["preuserinfo", "preaccesstoken", "presamlresponse"],
    });
    expect((await h.rest("GET", `${base}/executions/methods`, undefined, h.auth)).json.methods).toContain(
      "/zitadel.user.v2.UserService/AddHumanUser",
    );
    expect((await h.rest("GET", `${base}/executions/services`, undefined, h.auth)).json.services).toContain("zitadel.user.v2.UserService");

    const deleted = await h.rest("DELETE", `${base}/targets/${id}`, undefined, h.auth);
    expect(deleted.status).toBe(200);
    expect(deleted.json.deletionDate).toEqual(expect.any(String));
    expect((await h.rest("DELETE", `${base}/targets/${id}`, undefined, h.auth)).json).toEqual({});
    const after = await h.rest("POST", `${base}/executions/search`, { filters: [{ executionTypeFilter: { executionType: "EXECUTION_TYPE_REQUEST" } }] }, h.auth);
    // The service execution lost its only target and is removed; the ListUsers execution only included it and is removed in cascade.
    expect(after.status).toBe(200);
    expect(after.json.executions).toBeUndefined();
    const removed = await h.rest("PUT", `${base}/executions`, { condition: { request: { method: "/zitadel.user.v2.UserService/ListUsers" } } }, h.auth);
    expect(removed.status).toBe(200);
    expect((await h.rest("POST", `${base}/executions/search`, {}, h.auth)).json).toEqual({ pagination: { appliedLimit: "100" } });
  });

  it("maps error codes to HTTP statuses with a grpc-gateway body", async () => {
    const bad = await h.rest("POST", `${base}/targets`, { ...target("x"), endpoint: "nope" }, h.auth);
    expect(bad.status).toBe(400);
    expect(bad.json).toEqual({ code: Code.InvalidArgument, message: expect.stringContaining("endpoint"), details: [] });
    expect((await h.rest("POST", `${base}/targets`, { ...target("x"), timeout: undefined }, h.auth)).status).toBe(400);
    expect((await h.rest("POST", `${base}/targets`, { ...target("x"), timeout: "0s" }, h.auth)).status).toBe(400);
    expect((await h.rest("POST", `${base}/targets`, target("dup"), h.auth)).status).toBe(200);
    const dup = await h.rest("POST", `${base}/targets`, target("dup"), h.auth);
    expect(dup.status).toBe(409);
    expect(dup.json.code).toBe(Code.AlreadyExists);
    const missing = await h.rest("GET", `${base}/targets/404`, undefined, h.auth);
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ code: Code.NotFound, message: 'target "404" not found', details: [] });
    const unknownTarget = await h.rest("PUT", `${base}/executions`, { condition: { response: { all: true } }, targets: ["404"] }, h.auth);
    expect(unknownTarget.status).toBe(404);
    if (version === "v2") {
      const unknown = await h.rest("POST", `${base}/targets`, { ...target("jwt"), payloadType: "PAYLOAD_TYPE_XML" }, h.auth);
      expect(unknown.status).toBe(400);
      expect(unknown.json.code).toBe(Code.InvalidArgument);
    }
    const limit = await h.rest("POST", `${base}/targets/search`, { pagination: { limit: 1001 } }, h.auth);
    expect(limit.status).toBe(400);
    expect(limit.json.message).toMatch(/at most 1000/);
    const wrongType = await h.rest("POST", `${base}/targets`, { ...target("x"), timeout: 10 }, h.auth);
    expect(wrongType.status).toBe(400);
    expect(wrongType.json.code).toBe(Code.InvalidArgument);
  });

  it("answers 404 for unknown paths, 405 for a known path with the wrong method, 400 for malformed JSON", async () => {
    const unknown = await h.rest("GET", `${base}/nothing/here`, undefined, h.auth);
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ code: Code.NotFound, details: [] });
    const trailingSlash = await h.rest("POST", `${base}/targets/`, target("x"), h.auth);
    expect(trailingSlash.status).toBe(404);
    const wrongMethod = await h.rest("PATCH", `${base}/executions`, {}, h.auth);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get("allow")).toBe("PUT");
    expect(wrongMethod.json.code).toBe(Code.Unimplemented);
    const getFunctions = await h.rest("POST", `${base}/executions/functions`, {}, h.auth);
    expect(getFunctions.status).toBe(405);
    expect(getFunctions.headers.get("allow")).toBe("GET");
    const malformed = await h.rest("POST", `${base}/targets`, '{"name": "x",', h.auth);
    expect(malformed.status).toBe(400);
    expect(malformed.json.code).toBe(Code.InvalidArgument);
    expect(malformed.json.message).toMatch(/not valid JSON/);
    const array = await h.rest("POST", `${base}/targets`, "[1,2]", h.auth);
    expect(array.status).toBe(400);
    expect(array.json.message).toMatch(/must be a JSON object/);
    expect(await h.server.store.listTargets()).toEqual([]);
  });
});

describe("REST calls of the UserService", () => {
  it("POST and PUT /v2/users/human run the same request and response executions as a gRPC call", async () => {
    const admin = h.actions("v2", "grpc");
    const req = await admin.createTarget({
      name: "req",
      targetType: { case: "restWebhook", value: { interruptOnError: true } },
      endpoint: h.targets.endpoint("/req"),
      timeout: { seconds: 5n },
    });
    const res = await admin.createTarget({
      name: "res",
      targetType: { case: "restWebhook", value: { interruptOnError: true } },
      endpoint: h.targets.endpoint("/res"),
      timeout: { seconds: 5n },
    });
    const method = "/zitadel.user.v2.UserService/AddHumanUser";
    await admin.setExecution({ condition: { conditionType: { case: "request", value: { condition: { case: "method", value: method } } } }, targets: [req.id] });
    await admin.setExecution({ condition: { conditionType: { case: "response", value: { condition: { case: "all", value: true } } } }, targets: [res.id] });

    const grpcUser = await h.users("grpc").addHumanUser(
      { ...addUser("Grace", "Hopper", "grace@example.com"), userId: "grpc-user" },
      { headers: { "x-zitadel-orgid": "org-1" } },
    );
    const post = await h.rest("POST", "/v2/users/human", { ...addUser("Ada", "Lovelace", "ada@example.com"), userId: "post-user" }, {
      "x-zitadel-orgid": "org-1",
    });
    expect(post.status).toBe(200);
    expect(post.json).toMatchObject({ userId: "post-user", details: { resourceOwner: "org-1", sequence: "1" } });
    const put = await h.rest("PUT", "/v2/users/human", addUser("Alan", "Turing", "alan@example.com"));
    expect(put.status).toBe(200);

    const requests = await h.targets.waitFor("/req", 3);
    const responses = await h.targets.waitFor("/res", 3);
    expect(requests.map((c) => c.json.fullMethod)).toEqual([method, method, method]);
    expect(responses.map((c) => c.json.fullMethod)).toEqual([method, method, method]);
    const [grpcRes, postRes, putRes] = responses.map((c) => c.json);
    expect(grpcRes.response.userId).toBe(grpcUser.userId);
    expect(postRes.request).toEqual({ userId: "post-user", profile: { givenName: "Ada", familyName: "Lovelace" }, email: { email: "ada@example.com" } });
    expect(postRes.response.userId).toBe("post-user");
    expect(postRes.orgID).toBe("org-1");
    expect(putRes.response.userId).toBe(put.json.userId);
    // The same payload shape for gRPC and REST calls.
    expect(Object.keys(postRes)).toEqual(Object.keys(grpcRes));
    expect(postRes.instanceID).toBe(grpcRes.instanceID);
    expect(postRes.headers["Content-Type"]).toEqual(["application/json"]);
    expect(grpcRes.headers["Content-Type"]).toEqual(["application/grpc+proto"]);
    for (const call of [...requests, ...responses]) {
      expect(call.headers["zitadel-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    }
  });

  it("a failing target fails the REST call with the mapped status, and path variables reach the handler", async () => {
    h.targets.route("/fail", { status: 503 });
    const admin = h.actions("v2beta", "connect");
    const fail = await admin.createTarget({
      name: "fail",
      targetType: { case: "restCall", value: { interruptOnError: true } },
      endpoint: h.targets.endpoint("/fail"),
      timeout: { seconds: 5n },
    });
    const user = await h.rest("POST", "/v2/users/human", { ...addUser(), userId: "user/with space" });
    expect(user.status).toBe(200);
    const encoded = encodeURIComponent("user/with space");
    const got = await h.rest("GET", `/v2/users/${encoded}`);
    expect(got.status).toBe(200);
    expect(got.json.user.userId).toBe("user/with space");
    const updated = await h.rest("PUT", `/v2/users/human/${encoded}`, { profile: { givenName: "New", familyName: "Name" }, userId: "ignored" });
    expect(updated.status).toBe(200);
    expect((await h.rest("GET", `/v2/users/${encoded}`)).json.user.human.profile.givenName).toBe("New");

    await admin.setExecution({
      condition: { conditionType: { case: "request", value: { condition: { case: "method", value: "/zitadel.user.v2.UserService/DeleteUser" } } } },
      targets: [fail.id],
    });
    const deleted = await h.rest("DELETE", `/v2/users/${encoded}`);
    expect(deleted.status).toBe(400);
    expect(deleted.json).toEqual({ code: Code.FailedPrecondition, message: "Execution failed", details: [] });
    expect(h.targets.callsTo("/fail")).toHaveLength(1);
    expect(h.targets.callsTo("/fail")[0]!.json.request).toEqual({ userId: "user/with space" });
    expect((await h.rest("GET", `/v2/users/${encoded}`)).status).toBe(200);
    const unknown = await h.rest("GET", "/v2/users/nobody");
    expect(unknown.status).toBe(404);
  });
});

describe("restStatusFromCode", () => {
  it("maps codes as grpc-gateway does", () => {
    const expected: [Code, number][] = [
      [Code.Canceled, 499],
      [Code.Unknown, 500],
      [Code.InvalidArgument, 400],
      [Code.DeadlineExceeded, 504],
      [Code.NotFound, 404],
      [Code.AlreadyExists, 409],
      [Code.PermissionDenied, 403],
      [Code.ResourceExhausted, 429],
      [Code.FailedPrecondition, 400],
      [Code.Aborted, 409],
      [Code.OutOfRange, 400],
      [Code.Unimplemented, 501],
      [Code.Internal, 500],
      [Code.Unavailable, 503],
      [Code.DataLoss, 500],
      [Code.Unauthenticated, 401],
    ];
    for (const [code, status] of expected) {
      expect(restStatusFromCode(code), Code[code]).toBe(status);
    }
  });
});

// A service made at runtime, to test the transcoding rules the sample's protos do not use.
type RuleInit = MessageInitShape<typeof HttpRuleSchema>;
const ruleOptions = (rule: RuleInit) => {
  const options = create(MethodOptionsSchema);
  setExtension(options, http, create(HttpRuleSchema, rule));
  return options;
};
const field = (name: string, number: number, type: Type, extra: Record<string, unknown> = {}) => ({
  name,
  number,
  type,
  label: Label.OPTIONAL,
  jsonName: name.replace(/_(\w)/g, (_, c: string) => c.toUpperCase()),
  ...extra,
});
function thingService(rules: Record<string, RuleInit>): DescService {
  const file = create(FileDescriptorProtoSchema, {
    name: "test/things.proto",
    package: "test.things",
    syntax: "proto3",
    enumType: [{ name: "Kind", value: [{ name: "KIND_UNSPECIFIED", number: 0 }, { name: "KIND_BIG", number: 1 }] }],
    messageType: [
      { name: "Inner", field: [field("name", 1, Type.STRING), field("page_size", 2, Type.INT32)] },
      {
        name: "Thing",
        field: [
          field("name", 1, Type.STRING),
          field("shelf_id", 2, Type.INT64),
          field("tags", 3, Type.STRING, { label: Label.REPEATED }),
          field("flag", 4, Type.BOOL),
          field("kind", 5, Type.ENUM, { typeName: ".test.things.Kind" }),
          field("inner", 6, Type.MESSAGE, { typeName: ".test.things.Inner" }),
          field("path", 7, Type.STRING),
          field("sizes", 8, Type.INT32, { label: Label.REPEATED }),
        ],
      },
    ],
    service: [
      {
        name: "ThingService",
        method: Object.entries(rules).map(([name, rule]) => ({
          name,
          inputType: ".test.things.Thing",
          outputType: ".test.things.Thing",
          options: ruleOptions(rule),
        })),
      },
    ],
  });
  return createFileRegistry(file, () => undefined).getService("test.things.ThingService")!;
}

describe("createRestGateway", () => {
  const service = thingService({
    GetThing: { pattern: { case: "get", value: "/v1/{name=shelves/*/things/*}" } },
    UpdateThing: {
      pattern: { case: "patch", value: "/v1/{name=shelves/*/things/*}" },
      body: "inner",
      additionalBindings: [create(HttpRuleSchema, { pattern: { case: "post", value: "/v1/{name=shelves/*/things/*}:update" }, body: "*" })],
    },
    GetShelfThing: { pattern: { case: "get", value: "/v1/shelves/{shelf_id}/items/{inner.name}" } },
    GetSpecialThing: { pattern: { case: "get", value: "/v1/shelves/special/items/{inner.name}" } },
    GetFile: { pattern: { case: "get", value: "/v1/files/{path=**}" } },
    DeleteThing: { pattern: { case: "delete", value: "/v1/things/{name}" } },
    Custom: { pattern: { case: "custom", value: { kind: "SEARCH", path: "/v1/things" } }, body: "*" },
  });
  const router = createConnectRouter();
  for (const method of service.methods) {
    router.rpc(method as DescMethodUnary, (req, ctx) => {
      ctx.responseHeader.set("x-method", method.name);
      return req;
    });
  }
  const gateway = createRestGateway({ handlers: router.handlers, readMaxBytes: 1024 });

  const call = async (method: string, path: string, body?: string) => {
    const res = await gateway.handle({
      httpVersion: "1.1",
      method,
      url: "http://localhost" + path,
      header: new Headers(body === undefined ? {} : { "content-type": "application/json" }),
      body: createAsyncIterable(body === undefined ? [] : [new TextEncoder().encode(body)]),
      signal: new AbortController().signal,
    });
    const bytes = res.body ? await readAllBytes(res.body, 1 << 20) : new Uint8Array();
    const text = new TextDecoder().decode(bytes);
    return { status: res.status, method: res.header?.get("x-method"), allow: res.header?.get("allow"), json: text === "" ? undefined : JSON.parse(text) };
  };

  it("lists its routes", () => {
    expect(gateway.routes.map((r) => `${r.httpMethod} ${r.path} ${r.body}`)).toEqual([
      "GET /v1/{name=shelves/*/things/*} ",
      "PATCH /v1/{name=shelves/*/things/*} inner",
      "POST /v1/{name=shelves/*/things/*}:update *",
      "GET /v1/shelves/{shelf_id}/items/{inner.name} ",
      "GET /v1/shelves/special/items/{inner.name} ",
      "GET /v1/files/{path=**} ",
      "DELETE /v1/things/{name} ",
      "SEARCH /v1/things *",
    ]);
  });

  it("binds multi-segment variables and query parameters", async () => {
    const r = await call("GET", "/v1/shelves/a%20b/things/7?tags=x&tags=y&flag=true&kind=KIND_BIG&inner.page_size=5&sizes=1&sizes=2&shelfId=9&unknown=1&name=ignored");
    expect(r.status).toBe(200);
    expect(r.method).toBe("GetThing");
    expect(r.json).toEqual({
      name: "shelves/a b/things/7",
      tags: ["x", "y"],
      flag: true,
      kind: "KIND_BIG",
      inner: { pageSize: 5 },
      sizes: [1, 2],
      shelfId: "9",
    });
    expect((await call("GET", "/v1/shelves/1/things/2?kind=1")).json.kind).toBe("KIND_BIG");
    const badBool = await call("GET", "/v1/shelves/1/things/2?flag=yes");
    expect(badBool.status).toBe(400);
    expect(badBool.json.message).toMatch(/flag.*not a boolean/);
    const badInt = await call("GET", "/v1/shelves/1/things/2?shelf_id=abc");
    expect(badInt.status).toBe(400);
    expect((await call("GET", "/v1/shelves/1/things")).status).toBe(404);
    expect((await call("GET", "/v1/shelves//things/2")).status).toBe(404);
  });

  it("binds a body field, a verb and `*` bodies", async () => {
    const patched = await call("PATCH", "/v1/shelves/1/things/2?tags=q", JSON.stringify({ name: "inner name", page_size: 3 }));
    expect(patched.method).toBe("UpdateThing");
    expect(patched.json).toEqual({ name: "shelves/1/things/2", inner: { name: "inner name", pageSize: 3 }, tags: ["q"] });
    const verb = await call("POST", "/v1/shelves/1/things/2:update?tags=ignored", JSON.stringify({ name: "body name", flag: true, tags: ["b"] }));
    expect(verb.method).toBe("UpdateThing");
    expect(verb.json).toEqual({ name: "shelves/1/things/2", flag: true, tags: ["b"] });
    const custom = await call("SEARCH", "/v1/things", JSON.stringify({ path: "p" }));
    expect(custom).toMatchObject({ status: 200, method: "Custom", json: { path: "p" } });
    expect((await call("SEARCH", "/v1/things")).json).toEqual({});
    expect((await call("POST", "/v1/things", "{}")).allow).toBe("SEARCH");
  });

  it("binds nested path variables and prefers literal segments", async () => {
    const shelf = await call("GET", "/v1/shelves/42/items/x");
    expect(shelf).toMatchObject({ method: "GetShelfThing", json: { shelfId: "42", inner: { name: "x" } } });
    const special = await call("GET", "/v1/shelves/special/items/x");
    expect(special).toMatchObject({ method: "GetSpecialThing", json: { inner: { name: "x" } } });
    const file = await call("GET", "/v1/files/a/b%2Fc/d");
    expect(file).toMatchObject({ method: "GetFile", json: { path: "a/b/c/d" } });
    expect((await call("GET", "/v1/files/")).json).toEqual({});
    const deleted = await call("DELETE", "/v1/things/t1?flag=false");
    expect(deleted).toMatchObject({ method: "DeleteThing", json: { name: "t1" } });
    expect((await call("GET", "/v1/things/%E0%A4%A")).status).toBe(404);
  });

  it("rejects bodies that are too large, not JSON or of the wrong type", async () => {
    const big = await call("SEARCH", "/v1/things", JSON.stringify({ path: "x".repeat(2000) }));
    expect(big.status).toBe(413);
    expect(big.json.code).toBe(Code.ResourceExhausted);
    const notJson = await call("SEARCH", "/v1/things", "{");
    expect(notJson).toMatchObject({ status: 400, json: { code: Code.InvalidArgument } });
    const wrongType = await call("SEARCH", "/v1/things", JSON.stringify({ flag: "maybe" }));
    expect(wrongType).toMatchObject({ status: 400, json: { code: Code.InvalidArgument } });
  });

  it("runs the adaptRequest adapters, in order, on the merged request JSON before it is decoded", async () => {
    const seen: { method: string; json: unknown }[] = [];
    const adapted = createRestGateway({
      handlers: router.handlers,
      adaptRequest: [
        (method, json) => {
          seen.push({ method: method.name, json: structuredClone(json) });
          if (method.name !== "UpdateThing") return json;
          // An older shape: "label" was renamed to "path".
          const { label, ...rest } = json;
          return label === undefined ? json : { ...rest, path: label };
        },
        (method, json) => (method.name === "UpdateThing" && json.path === "upper" ? { ...json, path: "UPPER" } : json),
      ],
    });
    const res = await adapted.handle({
      httpVersion: "1.1",
      method: "POST",
      url: "http://localhost/v1/shelves/1/things/2:update",
      header: new Headers({ "content-type": "application/json" }),
      body: createAsyncIterable([new TextEncoder().encode(JSON.stringify({ label: "upper", flag: true }))]),
      signal: new AbortController().signal,
    });
    expect(res.status).toBe(200);
    const text = new TextDecoder().decode(await readAllBytes(res.body!, 1 << 20));
    expect(JSON.parse(text)).toEqual({ name: "shelves/1/things/2", flag: true, path: "UPPER" });
    expect(seen).toEqual([{ method: "UpdateThing", json: { label: "upper", flag: true, name: "shelves/1/things/2" } }]);
  });

  it("answers 400 when an adapter throws and 500 when one returns no object; without adapters nothing changes", async () => {
    const handle = (adaptRequest: Parameters<typeof createRestGateway>[0]["adaptRequest"], body: string) =>
      createRestGateway({ handlers: router.handlers, adaptRequest })
        .handle({
          httpVersion: "1.1",
          method: "SEARCH",
          url: "http://localhost/v1/things",
          header: new Headers({ "content-type": "application/json" }),
          body: createAsyncIterable([new TextEncoder().encode(body)]),
          signal: new AbortController().signal,
        })
        .then(async (res) => ({ status: res.status, json: JSON.parse(new TextDecoder().decode(await readAllBytes(res.body!, 1 << 20))) }));
    const thrown = await handle(() => {
      throw new Error("label and path must not both be set");
    }, "{}");
    expect(thrown).toEqual({
      status: 400,
      json: { code: Code.InvalidArgument, message: "request of test.things.ThingService/Custom is not acceptable: label and path must not both be set", details: [] },
    });
    const notObject = await handle(() => [] as never, "{}");
    expect(notObject).toMatchObject({ status: 500, json: { code: Code.Internal } });
    const single = await handle((_, json) => ({ ...json, path: "from adapter" }), '{"flag": true}');
    expect(single).toEqual({ status: 200, json: { flag: true, path: "from adapter" } });
    // The decoder still rejects what no adapter fixed.
    expect(await handle((_, json) => json, '{"flag": "maybe"}')).toMatchObject({ status: 400, json: { code: Code.InvalidArgument } });
    expect(await handle(undefined, '{"path": "p"}')).toEqual({ status: 200, json: { path: "p" } });
  });

  it("rejects malformed path templates", () => {
    for (const path of ["v1/things", "/v1/{name", "/v1/{name=**}/x", "/v1/{na-me}", "/v1/{inner.nope}", "/v1/{name={path}}"]) {
      const broken = thingService({ Broken: { pattern: { case: "get", value: path } } });
      const r = createConnectRouter();
      r.rpc(broken.methods[0] as DescMethodUnary, (req) => req);
      expect(() => createRestGateway({ handlers: r.handlers }), path).toThrow(/google.api.http path|has no field/);
    }
  });
});
