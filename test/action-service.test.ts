import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  createContextValues,
  createHandlerContext,
  createRouterTransport,
} from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ActionService as ActionServiceV2, GetTargetRequestSchema } from "../gen/zitadel/action/v2/action_service_pb.js";
import { ExecutionFieldName, ExecutionType, TargetFieldName } from "../gen/zitadel/action/v2/query_pb.js";
import { TextFilterMethod } from "../gen/zitadel/filter/v2/filter_pb.js";
import { PayloadType } from "../gen/zitadel/action/v2/target_pb.js";
import { ActionService as ActionServiceV2beta } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import { createActionService } from "../src/management/action-service.js";
import { knownFunctions } from "../src/functions/function-contracts.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { createGrpcJsClient, type GrpcJsError } from "./helpers/grpc-js-client.js";
import { addUser } from "./helpers/intercepted-server.js";
import { type ActionClient, type ApiVersion, type Protocol, type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";
import { clearStore } from "./helpers/clear-store.js";

async function codeOf(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (e) {
    return ConnectError.from(e).code;
  }
}

async function errorOf(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected an error");
}

const webhook = (name: string, endpoint = "http://127.0.0.1:9/hook", seconds = 10n) => ({
  name,
  targetType: { case: "restWebhook" as const, value: { interruptOnError: true } },
  endpoint,
  timeout: { seconds },
});

const responseOf = (method: string) => ({
  conditionType: { case: "response" as const, value: { condition: { case: "method" as const, value: method } } },
});
const requestOf = (selector: { case: "method" | "service"; value: string } | { case: "all"; value: boolean }) => ({
  conditionType: { case: "request" as const, value: { condition: selector } },
});
const addHumanUser = "/zitadel.user.v2.UserService/AddHumanUser";

let h: SampleHarness;
beforeAll(async () => {
  h = await startSampleHarness();
});
afterAll(async () => {
  await h.close();
});
// Every test starts from an empty store.
beforeEach(async () => {
  await clearStore(h.server.store);
});

const combinations: [ApiVersion, Protocol][] = [
  ["v2beta", "connect"],
  ["v2beta", "grpc"],
  ["v2", "connect"],
  ["v2", "grpc"],
];

describe.each(combinations)("ActionService %s over %s", (version, protocol) => {
  let client: ActionClient;
  beforeEach(() => {
    client = h.actions(version, protocol);
  });

  it("creates, gets, updates, lists and deletes a target", async () => {
    const created = await client.createTarget(webhook("hook", h.targets.endpoint("/a"), 5n));
    expect(created.$typeName).toBe(`zitadel.action.${version}.CreateTargetResponse`);
    expect(created.id).toMatch(/^\d+$/);
    expect(created.signingKey).toMatch(/^[A-Za-z0-9]{36}$/);
    expect(created.creationDate).toBeDefined();

    const { target } = await client.getTarget({ id: created.id });
    expect(target).toMatchObject({
      id: created.id,
      name: "hook",
      targetType: { case: "restWebhook", value: { interruptOnError: true } },
      endpoint: h.targets.endpoint("/a"),
      timeout: { seconds: 5n, nanos: 0 },
      signingKey: created.signingKey,
      // zitadel.action.v2beta has no payload type, as in ZITADEL.
      ...(version === "v2" ? { payloadType: PayloadType.JSON } : {}),
    });
    if (version === "v2beta") expect(target).not.toHaveProperty("payloadType");

    const updated = await client.updateTarget({
      id: created.id,
      name: "hook 2",
      targetType: { case: "restCall", value: { interruptOnError: false } },
      timeout: { seconds: 1n, nanos: 500_000_000 },
      endpoint: h.targets.endpoint("/b"),
    });
    expect(updated.signingKey).toBeUndefined();
    const after = (await client.getTarget({ id: created.id })).target!;
    expect(after).toMatchObject({
      name: "hook 2",
      targetType: { case: "restCall", value: { interruptOnError: false } },
      timeout: { seconds: 1n, nanos: 500_000_000 },
      endpoint: h.targets.endpoint("/b"),
      signingKey: created.signingKey,
    });

    const rotated = await client.updateTarget({ id: created.id, expirationSigningKey: { seconds: 0n } });
    expect(rotated.signingKey).toMatch(/^[A-Za-z0-9]{36}$/);
    expect(rotated.signingKey).not.toBe(created.signingKey);

    const list = await client.listTargets({});
    expect(list.pagination).toMatchObject({ totalResult: 1n, appliedLimit: 100n });
    expect(list.targets.map((t) => t.id)).toEqual([created.id]);

    const deleted = await client.deleteTarget({ id: created.id });
    expect(deleted.deletionDate).toBeDefined();
    expect(await codeOf(client.getTarget({ id: created.id }))).toBe(Code.NotFound);
    const again = await client.deleteTarget({ id: created.id });
    expect(again.deletionDate).toBeUndefined();
  });

  it("creates async and call targets", async () => {
    const a = await client.createTarget({
      name: "async",
      targetType: { case: "restAsync", value: {} },
      endpoint: "https://example.com/x",
      timeout: { seconds: 270n },
    });
    const c = await client.createTarget({
      name: "call",
      targetType: { case: "restCall", value: { interruptOnError: true } },
      endpoint: "https://example.com/y",
      timeout: { nanos: 1_000_000 },
    });
    expect((await client.getTarget({ id: a.id })).target?.targetType.case).toBe("restAsync");
    expect((await client.getTarget({ id: c.id })).target).toMatchObject({
      targetType: { case: "restCall", value: { interruptOnError: true } },
      timeout: { seconds: 0n, nanos: 1_000_000 },
    });
  });

  it("sets, lists and removes executions, with includes after targets", async () => {
    const t1 = await client.createTarget(webhook("t1"));
    const t2 = await client.createTarget(webhook("t2"));
    const service = requestOf({ case: "service", value: "zitadel.user.v2.UserService" });
    await client.setExecution({ condition: service, targets: [t2.id] });
    const set = await client.setExecution({
      condition: requestOf({ case: "method", value: addHumanUser }),
      targets: [t1.id],
      includes: [service],
    });
    expect(set.setDate).toBeDefined();

    const { executions, pagination } = await client.listExecutions({ pagination: { asc: true } });
    expect(pagination?.totalResult).toBe(2n);
    expect(executions.map((e) => (e.condition?.conditionType.value as { condition?: unknown } | undefined)?.condition)).toEqual([
      { case: "service", value: "zitadel.user.v2.UserService" },
      { case: "method", value: addHumanUser },
    ]);
    expect(executions[1]!.targets).toEqual([t1.id]);
    expect(executions[1]!.includes).toHaveLength(1);
    expect(executions[1]!.includes[0]!.conditionType).toMatchObject({
      case: "request",
      value: { condition: { case: "service", value: "zitadel.user.v2.UserService" } },
    });
    const stored = await h.server.store.getExecution("request/zitadel.user.v2.UserService/AddHumanUser");
    expect(stored?.targets).toEqual([{ target: t1.id }, { include: "request/zitadel.user.v2.UserService" }]);

    await client.setExecution({ condition: requestOf({ case: "method", value: addHumanUser }), targets: [] });
    const rest = await client.listExecutions({});
    expect(rest.executions).toHaveLength(1);
  });

  it("lists functions, methods and services", async () => {
    expect((await client.listExecutionFunctions({})).functions).toEqual(knownFunctions);
    const { methods } = await client.listExecutionMethods({});
    expect(methods).toContain(addHumanUser);
    // Executions never apply to the management API: it offers neither its methods nor its services.
    expect(methods).not.toContain(`/zitadel.action.${version}.ActionService/SetExecution`);
    expect(methods).not.toContain("/zitadel.user.v2.UserService/WatchUsers");
    const { services } = await client.listExecutionServices({});
    expect(services).toEqual(["zitadel.user.v2.UserService"]);
  });

  it("answers validation errors with precise codes", async () => {
    expect(await codeOf(client.createTarget(webhook("")))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.createTarget(webhook("x", "not a url")))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.createTarget({ ...webhook("x"), timeout: undefined }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.createTarget(webhook("x", undefined, 0n)))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.createTarget(webhook("x", undefined, 271n)))).toBe(Code.InvalidArgument);
    await client.createTarget(webhook("taken"));
    expect(await codeOf(client.createTarget(webhook("taken")))).toBe(Code.AlreadyExists);
    expect(await codeOf(client.setExecution({ condition: responseOf(addHumanUser), targets: ["404"] }))).toBe(Code.NotFound);
    expect(await codeOf(client.setExecution({ condition: responseOf("/zitadel.user.v2.UserService/Nope"), targets: [] }))).toBe("ok");
  });
});

describe("ActionService validation", () => {
  let client: ActionClient;
  beforeEach(() => {
    client = h.actions("v2", "connect");
  });

  it("rejects bad targets", async () => {
    const cases: [string, Parameters<ActionClient["createTarget"]>[0], Code][] = [
      ["empty name", webhook(""), Code.InvalidArgument],
      ["blank name", webhook("   "), Code.InvalidArgument],
      ["long name", webhook("n".repeat(1001)), Code.InvalidArgument],
      ["no type", { ...webhook("x"), targetType: { case: undefined } }, Code.InvalidArgument],
      ["bad URL", webhook("x", "http//nope"), Code.InvalidArgument],
      ["non-http URL", webhook("x", "ftp://example.com/x"), Code.InvalidArgument],
      ["empty URL", webhook("x", ""), Code.InvalidArgument],
      ["missing timeout", { ...webhook("x"), timeout: undefined }, Code.InvalidArgument],
      ["zero timeout", webhook("x", undefined, 0n), Code.InvalidArgument],
      ["negative timeout", webhook("x", undefined, -1n), Code.InvalidArgument],
      ["too large timeout", { ...webhook("x"), timeout: { seconds: 270n, nanos: 1 } }, Code.InvalidArgument],
      ["unknown payload type", { ...webhook("x"), payloadType: 7 as PayloadType }, Code.InvalidArgument],
    ];
    for (const [why, request, code] of cases) {
      const error = await errorOf(client.createTarget(request));
      expect(error.code, why).toBe(code);
      expect(error.rawMessage, why).not.toBe("");
    }
    expect((await client.listTargets({})).targets, "no partial writes").toEqual([]);
    expect((await errorOf(client.createTarget({ ...webhook("x"), timeout: undefined }))).rawMessage).toMatch(/timeout must be set/);
    expect((await errorOf(client.createTarget(webhook("")))).rawMessage).toMatch(/name must not be empty/);
  });

  it("rejects bad updates and a taken name without changing anything", async () => {
    const a = await client.createTarget(webhook("a"));
    await client.createTarget(webhook("b"));
    expect(await codeOf(client.updateTarget({ id: "", name: "c" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.updateTarget({ id: "404", name: "c" }))).toBe(Code.NotFound);
    expect(await codeOf(client.updateTarget({ id: a.id, name: "b" }))).toBe(Code.AlreadyExists);
    expect(await codeOf(client.updateTarget({ id: a.id, name: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.updateTarget({ id: a.id, endpoint: "nope" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.updateTarget({ id: a.id, timeout: { seconds: 0n } }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.updateTarget({ id: a.id, timeout: { seconds: 300n } }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.updateTarget({ id: a.id, expirationSigningKey: { seconds: 5n } }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.updateTarget({ id: a.id, name: "z", payloadType: 9 as PayloadType }))).toBe(Code.InvalidArgument);
    const target = (await client.getTarget({ id: a.id })).target!;
    expect(target.name).toBe("a");
    expect(target.changeDate).toEqual(target.creationDate);
    expect(await codeOf(client.getTarget({ id: "" }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.deleteTarget({ id: "" }))).toBe(Code.InvalidArgument);
  });

  it("rejects unknown targets, methods, services, functions and events", async () => {
    const t = await client.createTarget(webhook("t"));
    const cases: [string, Parameters<ActionClient["setExecution"]>[0], Code][] = [
      ["no condition", { targets: [t.id] }, Code.InvalidArgument],
      ["empty condition", { condition: {}, targets: [t.id] }, Code.InvalidArgument],
      ["empty request", { condition: { conditionType: { case: "request", value: {} } }, targets: [t.id] }, Code.InvalidArgument],
      ["all false", { condition: requestOf({ case: "all", value: false }), targets: [t.id] }, Code.InvalidArgument],
      ["malformed method", { condition: requestOf({ case: "method", value: "not a method" }), targets: [t.id] }, Code.InvalidArgument],
      ["unknown target", { condition: responseOf(addHumanUser), targets: [t.id, "404"] }, Code.NotFound],
      ["empty target ID", { condition: responseOf(addHumanUser), targets: [""] }, Code.InvalidArgument],
      ["repeated target", { condition: responseOf(addHumanUser), targets: [t.id, t.id] }, Code.InvalidArgument],
      ["unknown method", { condition: responseOf("/zitadel.user.v2.UserService/Nope"), targets: [t.id] }, Code.NotFound],
      ["streaming method", { condition: responseOf("/zitadel.user.v2.UserService/WatchUsers"), targets: [t.id] }, Code.InvalidArgument],
      ["unknown service", { condition: requestOf({ case: "service", value: "zitadel.nope.v1.Nope" }), targets: [t.id] }, Code.NotFound],
      ["the management API", { condition: requestOf({ case: "service", value: "zitadel.action.v2.ActionService" }), targets: [t.id] }, Code.InvalidArgument],
      [
        "a method of the management API",
        { condition: responseOf("/zitadel.action.v2beta.ActionService/DeleteTarget"), targets: [t.id] },
        Code.InvalidArgument,
      ],
      [
        "unknown function",
        { condition: { conditionType: { case: "function", value: { name: "preanything" } } }, targets: [t.id] },
        Code.NotFound,
      ],
      [
        "empty function",
        { condition: { conditionType: { case: "function", value: { name: "" } } }, targets: [t.id] },
        Code.InvalidArgument,
      ],
      [
        "unknown event",
        { condition: { conditionType: { case: "event", value: { condition: { case: "event", value: "user.nope" } } } }, targets: [t.id] },
        Code.NotFound,
      ],
      [
        "unknown group",
        { condition: { conditionType: { case: "event", value: { condition: { case: "group", value: "user.hu" } } } }, targets: [t.id] },
        Code.NotFound,
      ],
    ];
    for (const [why, request, code] of cases) {
      expect(await codeOf(client.setExecution(request)), why).toBe(code);
    }
    expect((await client.listExecutions({})).executions, "no partial writes").toEqual([]);

    const ok: Parameters<ActionClient["setExecution"]>[0]["condition"][] = [
      { conditionType: { case: "function", value: { name: "preuserinfo" } } },
      { conditionType: { case: "event", value: { condition: { case: "event", value: "user.human.added" } } } },
      { conditionType: { case: "event", value: { condition: { case: "group", value: "user.human" } } } },
      { conditionType: { case: "event", value: { condition: { case: "group", value: "user" } } } },
      { conditionType: { case: "event", value: { condition: { case: "all", value: true } } } },
      requestOf({ case: "method", value: "zitadel.user.v2.UserService/GetUserByID" }),
      requestOf({ case: "all", value: true }),
    ];
    for (const condition of ok) {
      expect(await codeOf(client.setExecution({ condition, targets: [t.id] }))).toBe("ok");
    }
    const ids = (await h.server.store.listExecutions()).map((e) => e.id).sort();
    expect(ids).toEqual([
      "event",
      "event/user.*",
      "event/user.human.*",
      "event/user.human.added",
      "function/preuserinfo",
      "request",
      "request/zitadel.user.v2.UserService/GetUserByID",
    ]);
  });

  it("rejects include cycles, chains deeper than 3 and missing includes", async () => {
    const t = await client.createTarget(webhook("t"));
    const method = (m: string) => requestOf({ case: "method", value: `/zitadel.user.v2.UserService/${m}` });
    const service = requestOf({ case: "service", value: "zitadel.user.v2.UserService" });
    const all = requestOf({ case: "all", value: true });
    expect(await codeOf(client.setExecution({ condition: method("AddHumanUser"), includes: [service] }))).toBe(Code.NotFound);
    expect(await codeOf(client.setExecution({ condition: service, includes: [service] }))).toBe(Code.InvalidArgument);
    const otherType = await errorOf(client.setExecution({ condition: service, includes: [responseOf(addHumanUser)] }));
    expect(otherType.code).toBe(Code.InvalidArgument);
    expect(otherType.rawMessage).toMatch(/can only include request executions/);

    // A chain: AddHumanUser -> GetUserByID -> DeleteUser -> UserService (3 includes deep).
    await client.setExecution({ condition: service, targets: [t.id] });
    await client.setExecution({ condition: method("DeleteUser"), includes: [service] });
    await client.setExecution({ condition: method("GetUserByID"), includes: [method("DeleteUser")] });
    await client.setExecution({ condition: method("AddHumanUser"), includes: [method("GetUserByID")] });
    // One more level is too deep.
    await client.setExecution({ condition: all, targets: [t.id] });
    expect(await codeOf(client.setExecution({ condition: service, targets: [t.id], includes: [all] }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.setExecution({ condition: method("ListUsers"), includes: [method("AddHumanUser")] }))).toBe(
      Code.InvalidArgument,
    );
    // A cycle.
    const cycle = await errorOf(client.setExecution({ condition: service, includes: [method("AddHumanUser")] }));
    expect(cycle.code).toBe(Code.InvalidArgument);
    expect(cycle.rawMessage).toMatch(/cycle|deep/);
    expect((await h.server.store.getExecution("request/zitadel.user.v2.UserService"))?.targets).toEqual([{ target: t.id }]);
  });

  it("removes an execution when it is set with no targets, and a deleted target from every execution", async () => {
    const a = await client.createTarget(webhook("a"));
    const b = await client.createTarget(webhook("b"));
    await client.setExecution({ condition: responseOf(addHumanUser), targets: [a.id, b.id] });
    await client.setExecution({ condition: requestOf({ case: "all", value: true }), targets: [a.id] });
    await client.deleteTarget({ id: a.id });
    const { executions } = await client.listExecutions({});
    expect(executions).toHaveLength(1);
    expect(executions[0]!.targets).toEqual([b.id]);
    await client.setExecution({ condition: responseOf(addHumanUser) });
    expect((await client.listExecutions({})).executions).toEqual([]);
  });
});

describe("ActionService lists", () => {
  let client: ActionClient;
  beforeEach(() => {
    client = h.actions("v2beta", "connect");
  });

  it("paginates with a default limit of 100 and a maximum of 1000", async () => {
    for (let i = 0; i < 105; i++) {
      await h.server.store.createTarget({ name: `t${String(i).padStart(3, "0")}`, type: "webhook", endpoint: "https://example.com", timeoutMs: 1000 });
    }
    const first = await client.listTargets({ sortingColumn: TargetFieldName.NAME, pagination: { asc: true } });
    expect(first.pagination).toMatchObject({ totalResult: 105n, appliedLimit: 100n });
    expect(first.targets).toHaveLength(100);
    expect(first.targets[0]!.name).toBe("t000");
    const second = await client.listTargets({ sortingColumn: TargetFieldName.NAME, pagination: { asc: true, offset: 100n } });
    expect(second.targets.map((t) => t.name)).toEqual(["t100", "t101", "t102", "t103", "t104"]);
    const desc = await client.listTargets({ sortingColumn: TargetFieldName.NAME, pagination: { limit: 2 } });
    expect(desc.targets.map((t) => t.name)).toEqual(["t104", "t103"]);
    expect(desc.pagination?.appliedLimit).toBe(2n);
    expect((await client.listTargets({ pagination: { limit: 1000 } })).targets).toHaveLength(105);
    expect(await codeOf(client.listTargets({ pagination: { limit: 1001 } }))).toBe(Code.InvalidArgument);
    expect(await codeOf(client.listExecutions({ pagination: { limit: 5000 } }))).toBe(Code.InvalidArgument);
    expect((await client.listTargets({ pagination: { offset: 1_000_000n } })).targets).toEqual([]);
  });

  it("sorts targets by every column", async () => {
    const make = async (name: string, type: "webhook" | "call" | "async", endpoint: string, timeoutMs: number, interruptOnError: boolean) =>
      (await h.server.store.createTarget({ name, type, endpoint, timeoutMs, interruptOnError })).id;
    const b = await make("b", "call", "https://c.example", 3000, true);
    await new Promise((r) => setTimeout(r, 5));
    const a = await make("a", "async", "https://a.example", 1000, false);
    await new Promise((r) => setTimeout(r, 5));
    const c = await make("c", "webhook", "https://b.example", 2000, false);
    await new Promise((r) => setTimeout(r, 5));
    await h.server.store.updateTarget(b, { timeoutMs: 3500 });
    const order = async (column: TargetFieldName) =>
      (await client.listTargets({ sortingColumn: column, pagination: { asc: true } })).targets.map((t) => t.id);
    expect(await order(TargetFieldName.UNSPECIFIED)).toEqual([b, a, c]);
    expect(await order(TargetFieldName.CREATED_DATE)).toEqual([b, a, c]);
    expect(await order(TargetFieldName.CHANGED_DATE)).toEqual([a, c, b]);
    expect(await order(TargetFieldName.ID)).toEqual([b, a, c]);
    expect(await order(TargetFieldName.NAME)).toEqual([a, b, c]);
    expect(await order(TargetFieldName.TARGET_TYPE)).toEqual([c, b, a]);
    expect(await order(TargetFieldName.URL)).toEqual([a, c, b]);
    expect(await order(TargetFieldName.TIMEOUT)).toEqual([a, c, b]);
    expect((await order(TargetFieldName.INTERRUPT_ON_ERROR)).at(-1)).toBe(b);
    expect((await client.listTargets({})).targets.map((t) => t.id), "default: newest first").toEqual([c, a, b]);
    expect(await codeOf(client.listTargets({ sortingColumn: 99 as TargetFieldName }))).toBe(Code.InvalidArgument);
  });

  it("filters targets by name and ID", async () => {
    const ids: Record<string, string> = {};
    for (const name of ["Alpha", "alphabet", "beta", "gamma-alpha"]) {
      ids[name] = (await client.createTarget(webhook(name))).id;
    }
    const names = async (targetName: string, method: TextFilterMethod) =>
      (
        await client.listTargets({
          sortingColumn: TargetFieldName.NAME,
          pagination: { asc: true },
          filters: [{ filter: { case: "targetNameFilter", value: { targetName, method } } }],
        })
      ).targets.map((t) => t.name);
    expect(await names("alpha", TextFilterMethod.EQUALS)).toEqual([]);
    expect(await names("Alpha", TextFilterMethod.EQUALS)).toEqual(["Alpha"]);
    expect(await names("alpha", TextFilterMethod.EQUALS_IGNORE_CASE)).toEqual(["Alpha"]);
    expect(await names("alpha", TextFilterMethod.STARTS_WITH)).toEqual(["alphabet"]);
    expect(await names("ALPHA", TextFilterMethod.STARTS_WITH_IGNORE_CASE)).toEqual(["Alpha", "alphabet"]);
    expect(await names("alpha", TextFilterMethod.CONTAINS)).toEqual(["alphabet", "gamma-alpha"]);
    expect(await names("ALPHA", TextFilterMethod.CONTAINS_IGNORE_CASE)).toEqual(["Alpha", "alphabet", "gamma-alpha"]);
    expect(await names("ta", TextFilterMethod.ENDS_WITH)).toEqual(["beta"]);
    expect(await names("PHA", TextFilterMethod.ENDS_WITH_IGNORE_CASE)).toEqual(["Alpha", "gamma-alpha"]);
    expect(await codeOf(names("x", 42 as TextFilterMethod))).toBe(Code.InvalidArgument);
    expect(await codeOf(names("x".repeat(201), TextFilterMethod.EQUALS))).toBe(Code.InvalidArgument);
    const byIds = await client.listTargets({
      filters: [
        { filter: { case: "inTargetIdsFilter", value: { targetIds: [ids.beta!, ids.Alpha!, "404"] } } },
        { filter: { case: "targetNameFilter", value: { targetName: "a", method: TextFilterMethod.ENDS_WITH } } },
      ],
    });
    expect(byIds.targets.map((t) => t.name).sort()).toEqual(["Alpha", "beta"]);
    expect(byIds.pagination?.totalResult).toBe(2n);
    expect(await codeOf(client.listTargets({ filters: [{ filter: { case: undefined } }] }))).toBe(Code.InvalidArgument);
  });

  it("filters and sorts executions", async () => {
    const a = await client.createTarget(webhook("a"));
    const b = await client.createTarget(webhook("b"));
    const service = requestOf({ case: "service", value: "zitadel.user.v2.UserService" });
    await client.setExecution({ condition: service, targets: [a.id] });
    await new Promise((r) => setTimeout(r, 5));
    await client.setExecution({ condition: responseOf(addHumanUser), targets: [b.id] });
    await new Promise((r) => setTimeout(r, 5));
    await client.setExecution({ condition: requestOf({ case: "method", value: addHumanUser }), targets: [b.id], includes: [service] });
    await new Promise((r) => setTimeout(r, 5));
    await client.setExecution({ condition: { conditionType: { case: "function", value: { name: "preaccesstoken" } } }, targets: [a.id] });
    await new Promise((r) => setTimeout(r, 5));
    await client.setExecution({ condition: service, targets: [a.id, b.id] });

    const ids = async (sortingColumn: ExecutionFieldName) =>
      (await client.listExecutions({ pagination: { asc: true }, sortingColumn })).executions.map((e) =>
        JSON.stringify(e.condition?.conditionType.case === "function" ? "function" : e.condition?.conditionType.value),
      );
    const all = await client.listExecutions({ pagination: { asc: true } });
    expect(all.pagination?.totalResult).toBe(4n);
    const byType = await client.listExecutions({
      filters: [{ filter: { case: "executionTypeFilter", value: { executionType: ExecutionType.REQUEST } } }],
    });
    expect(byType.executions).toHaveLength(2);
    const byFunction = await client.listExecutions({
      filters: [{ filter: { case: "executionTypeFilter", value: { executionType: ExecutionType.FUNCTION } } }],
    });
    expect(byFunction.executions.map((e) => e.condition?.conditionType)).toEqual([
      expect.objectContaining({ case: "function", value: expect.objectContaining({ name: "preaccesstoken" }) }),
    ]);
    const byTarget = await client.listExecutions({ filters: [{ filter: { case: "targetFilter", value: { targetId: b.id } } }] });
    expect(byTarget.executions).toHaveLength(3);
    const byInclude = await client.listExecutions({ filters: [{ filter: { case: "includeFilter", value: { include: service } } }] });
    expect(byInclude.executions.map((e) => e.targets)).toEqual([[b.id]]);
    const byCondition = await client.listExecutions({
      filters: [
        { filter: { case: "inConditionsFilter", value: { conditions: [responseOf(addHumanUser), service] } } },
        { filter: { case: "targetFilter", value: { targetId: b.id } } },
      ],
    });
    expect(byCondition.executions).toHaveLength(2);
    expect(await codeOf(client.listExecutions({ filters: [{ filter: { case: "executionTypeFilter", value: {} } }] }))).toBe(
      Code.InvalidArgument,
    );
    expect(await codeOf(client.listExecutions({ filters: [{ filter: { case: "inConditionsFilter", value: { conditions: [{}] } } }] }))).toBe(
      Code.InvalidArgument,
    );

    // Sorting: creation date (default), change date, ID.
    const created = await ids(ExecutionFieldName.CREATED_DATE);
    expect(created[0]).toContain("zitadel.user.v2.UserService\"");
    const changed = await ids(ExecutionFieldName.CHANGED_DATE);
    expect(changed.at(-1)).toContain("zitadel.user.v2.UserService\"");
    const byId = (await client.listExecutions({ sortingColumn: ExecutionFieldName.ID, pagination: { asc: true } })).executions;
    expect(byId.map((e) => e.condition?.conditionType.case)).toEqual(["function", "request", "request", "response"]);
    expect(await codeOf(client.listExecutions({ sortingColumn: 7 as ExecutionFieldName }))).toBe(Code.InvalidArgument);
  });
});

describe("ActionService authorization", () => {
  const protocols: Protocol[] = ["connect", "grpc", "grpc-web"];
  it.each(protocols)("needs the admin bearer token over %s", async (protocol) => {
    for (const version of ["v2beta", "v2"] as const) {
      const none = await errorOf(h.actions(version, protocol, null).listTargets({}));
      expect(none.code).toBe(Code.Unauthenticated);
      expect(none.rawMessage).toMatch(/missing/);
      expect(await codeOf(h.actions(version, protocol, "wrong").listTargets({}))).toBe(Code.Unauthenticated);
      expect(await codeOf(h.actions(version, protocol, h.server.adminToken + "x").createTarget(webhook("x")))).toBe(Code.Unauthenticated);
      expect(await codeOf(h.actions(version, protocol).listTargets({}))).toBe("ok");
    }
    // The UserService needs no token.
    expect(await codeOf(h.users(protocol).addHumanUser(addUser()))).toBe("ok");
    expect(await h.server.store.listTargets()).toEqual([]);
  });

  it("needs the admin bearer token over REST", async () => {
    for (const path of ["/v2beta/actions/targets/search", "/v2/actions/targets/search"]) {
      const none = await h.rest("POST", path, {});
      expect(none.status).toBe(401);
      expect(none.json).toMatchObject({ code: Code.Unauthenticated, details: [] });
      expect(none.headers.get("www-authenticate")).toBe("Bearer");
      expect((await h.rest("POST", path, {}, { authorization: "Bearer nope" })).status).toBe(401);
      expect((await h.rest("POST", path, {}, { authorization: `Basic ${h.server.adminToken}` })).status).toBe(401);
      expect((await h.rest("POST", path, {}, { authorization: "Bearer" })).status).toBe(401);
      expect((await h.rest("POST", path, {}, h.auth)).status).toBe(200);
      expect((await h.rest("POST", path, {}, { authorization: `bearer  ${h.server.adminToken} ` })).status).toBe(200);
    }
  });

  it("a failing `all` execution breaks the UserService but not the ActionService", async () => {
    h.targets.route("/broken", { status: 500 });
    const client = h.actions("v2", "grpc");
    const broken = await client.createTarget(webhook("broken", h.targets.endpoint("/broken")));
    await client.setExecution({ condition: requestOf({ case: "all", value: true }), targets: [broken.id] });
    await client.setExecution({
      condition: { conditionType: { case: "response", value: { condition: { case: "all", value: true } } } },
      targets: [broken.id],
    });
    for (const protocol of ["connect", "grpc"] as const) {
      const error = await errorOf(h.users(protocol).addHumanUser(addUser()));
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.rawMessage).toBe("Execution failed");
    }
    const calls = h.targets.callsTo("/broken").length;
    expect(calls).toBeGreaterThan(0);
    // Every ActionService RPC still works, over every protocol and REST, for both versions.
    for (const version of ["v2beta", "v2"] as const) {
      for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
        const c = h.actions(version, protocol);
        expect((await c.listTargets({})).targets).toHaveLength(1);
        expect((await c.listExecutions({})).executions).toHaveLength(2);
        await c.getTarget({ id: broken.id });
      }
      expect((await h.rest("GET", `/${version}/actions/executions/methods`, undefined, h.auth)).status).toBe(200);
    }
    expect(h.targets.callsTo("/broken")).toHaveLength(calls);
    // The admin repairs the lockout.
    await client.deleteTarget({ id: broken.id });
    expect(await codeOf(h.users("grpc").addHumanUser(addUser()))).toBe("ok");
  });
});

describe("createActionService", () => {
  it("serves both versions from one object, replying with the schema of the called version", async () => {
    const store = createMemoryStore();
    const service = createActionService({ store, services: [UserService] });
    const transport = createRouterTransport(({ service: register }) => {
      register(ActionServiceV2, service);
      register(ActionServiceV2beta, service);
    });
    const v2 = createClient(ActionServiceV2, transport);
    const v2beta = createClient(ActionServiceV2beta, transport);
    const created = await v2.createTarget(webhook("direct"));
    expect(created.$typeName).toBe("zitadel.action.v2.CreateTargetResponse");
    const got = await v2beta.getTarget({ id: created.id });
    expect(got.$typeName).toBe("zitadel.action.v2beta.GetTargetResponse");
    expect(got.target?.$typeName).toBe("zitadel.action.v2beta.Target");
    expect(got.target?.name).toBe("direct");
    expect((await v2beta.listExecutionServices({})).services).toEqual(["zitadel.user.v2.UserService"]);
    expect((await v2.listExecutionMethods({})).methods).not.toContain("/zitadel.user.v2.UserService/WatchUsers");
    expect(await codeOf(v2.setExecution({ condition: responseOf("/zitadel.action.v2.ActionService/ListTargets"), targets: [created.id] }))).toBe(
      Code.InvalidArgument,
    );

    // Registered under a service that is not an ActionService, it refuses to answer.
    const context = createHandlerContext({
      service: UserService,
      method: UserService.method.getUserByID,
      protocolName: "test",
      requestMethod: "POST",
      url: "http://localhost/",
      contextValues: createContextValues(),
    });
    const foreign = await errorOf(
      (async () => service.getTarget(create(GetTargetRequestSchema, { id: created.id }), context))(),
    );
    expect(foreign.code).toBe(Code.Internal);
    await store.close();
  });
});

describe("ActionService with @grpc/grpc-js", () => {
  it("interoperates with the reference gRPC implementation, token in the metadata", async () => {
    const client = createGrpcJsClient(h.server.url, "zitadel/action/v2/action_service.proto", "zitadel.action.v2.ActionService");
    try {
      const unauthenticated = await client.unary("ListTargets", {}).catch((e: GrpcJsError) => e);
      expect((unauthenticated as GrpcJsError).code).toBe(Code.Unauthenticated);
      const metadata = { authorization: `Bearer ${h.server.adminToken}` };
      const created = await client.unary("CreateTarget", webhookJson("grpc-js"), metadata);
      expect(created.id).toMatch(/^\d+$/);
      const listed = await client.unary("ListTargets", { pagination: { limit: 10 } }, metadata);
      expect(listed.targets.map((t: { name: string }) => t.name)).toEqual(["grpc-js"]);
      expect(listed.targets[0].timeout).toEqual({ seconds: "3" });
      const set = await client.unary(
        "SetExecution",
        { condition: { response: { method: addHumanUser } }, targets: [created.id] },
        metadata,
      );
      expect(set.setDate).toBeDefined();
      const bad = await client.unary("CreateTarget", webhookJson(""), metadata).catch((e: GrpcJsError) => e);
      expect((bad as GrpcJsError).code).toBe(Code.InvalidArgument);
    } finally {
      client.close();
    }
  });
});

function webhookJson(name: string) {
  return { name, restWebhook: { interruptOnError: false }, endpoint: "https://example.com/hook", timeout: { seconds: 3 } };
}
