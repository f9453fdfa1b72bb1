// The same input gives ZITADEL's output: forwarded errors, payloads without empty fields, the
// sample's event and function payloads, unknown gRPC methods. Each test is named in the README
// table "Differences from ZITADEL" or in the parity notes it backs.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { UserService as ZUserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTargetDispatcher, forwardedErrorOf, type TargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { encodeRequestPayload } from "../src/dispatch/payload.js";
import { encodeEventPayload } from "../src/events/action-event.js";
import { silentLogger } from "../src/logger.js";
import type { Target } from "../src/target.js";
import { clearStore } from "./helpers/clear-store.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

let h: SampleHarness;
let dispatcher: TargetDispatcher;
beforeAll(async () => {
  h = await startSampleHarness({ eventWorker: { pollIntervalMs: 50, retry: { initialDelayMs: 50, maxDelayMs: 200 } } });
  dispatcher = createTargetDispatcher({ logger: silentLogger });
});
afterAll(async () => {
  await dispatcher.close();
  await h.close();
});
beforeEach(async () => {
  await clearStore(h.server.store);
  h.targets.calls.length = 0;
});

const callTarget = (path: string): Target => ({
  id: "t1",
  instanceId: "",
  name: path,
  type: "call",
  interruptOnError: true,
  endpoint: h.targets.endpoint(path),
  timeoutMs: 5000,
  signingKey: "k".repeat(36),
  payloadType: "json",
  creationDate: new Date(),
  changeDate: new Date(),
});

async function outcome(body: unknown): Promise<{ code: Code; message: string } | "passed"> {
  const path = `/fwd-${Math.random().toString(36).slice(2)}`;
  h.targets.route(path, { body });
  try {
    await dispatcher.call({ target: callTarget(path), executionId: "e", body: "{}", ignoreBody: false });
    return "passed";
  } catch (e) {
    const error = ConnectError.from(e);
    return { code: error.code, message: error.rawMessage };
  }
}

describe("forwarded errors, as ZITADEL reads them", () => {
  it("forwards when the code is not 0 or the message is not empty, with ZITADEL's code mapping", async () => {
    const cases: [unknown, Awaited<ReturnType<typeof outcome>>][] = [
      [{ forwardedStatusCode: 0 }, "passed"],
      [{ forwardedStatusCode: 0, forwardedErrorMessage: "" }, "passed"],
      [{ forwardedErrorMessage: "no code" }, { code: Code.FailedPrecondition, message: "no code" }],
      [{ forwardedStatusCode: 400, forwardedErrorMessage: "m" }, { code: Code.InvalidArgument, message: "m" }],
      [{ forwardedStatusCode: 401, forwardedErrorMessage: "m" }, { code: Code.Unauthenticated, message: "m" }],
      [{ forwardedStatusCode: 403, forwardedErrorMessage: "m" }, { code: Code.PermissionDenied, message: "m" }],
      [{ forwardedStatusCode: 404, forwardedErrorMessage: "m" }, { code: Code.NotFound, message: "m" }],
      [{ forwardedStatusCode: 409, forwardedErrorMessage: "m" }, { code: Code.AlreadyExists, message: "m" }],
      [{ forwardedStatusCode: 429, forwardedErrorMessage: "m" }, { code: Code.ResourceExhausted, message: "m" }],
      [{ forwardedStatusCode: 408, forwardedErrorMessage: "m" }, { code: Code.Unknown, message: "m" }],
      [{ forwardedStatusCode: 418, forwardedErrorMessage: "teapot" }, { code: Code.Unknown, message: "teapot" }],
      [{ forwardedStatusCode: 499 }, { code: Code.Unknown, message: "forwarded status 499" }],
      [{ forwardedStatusCode: 500, forwardedErrorMessage: "boom" }, { code: Code.FailedPrecondition, message: "boom" }],
      [{ forwardedStatusCode: 302 }, { code: Code.FailedPrecondition, message: "Execution failed" }],
    ];
    for (const [body, expected] of cases) {
      expect(await outcome(body), JSON.stringify(body)).toEqual(expected);
    }
  });

  it("reads the answer as Go does: keys case-insensitive, anything that does not decode forwards nothing", async () => {
    expect(await outcome({ ForwardedStatusCode: 403, FORWARDEDERRORMESSAGE: "caps" })).toEqual({ code: Code.PermissionDenied, message: "caps" });
    expect(await outcome({ forwardedstatuscode: 404, forwardedStatusCode: 403 })).toEqual({ code: Code.PermissionDenied, message: "forwarded status 403" });
    for (const body of [
      { forwardedStatusCode: "403" },
      { forwardedStatusCode: 403.5 },
      { forwardedStatusCode: 403, forwardedErrorMessage: 7 },
      { forwardedStatusCode: null },
      [{ forwardedStatusCode: 403 }],
      "text",
    ]) {
      expect(forwardedErrorOf(body), JSON.stringify(body)).toBeUndefined();
    }
  });

  it("ignores a forwarded error of a target without interruptOnError, as ZITADEL does", async () => {
    h.targets.route("/soft-forward", { body: { forwardedStatusCode: 403, forwardedErrorMessage: "no" } });
    const soft = await h.actions().createTarget({ name: "soft", targetType: { case: "restWebhook", value: { interruptOnError: false } }, endpoint: h.targets.endpoint("/soft-forward"), timeout: { seconds: 5n } });
    await h.actions().setExecution({ condition: { conditionType: { case: "request", value: { condition: { case: "method", value: "/zitadel.user.v2.UserService/AddHumanUser" } } } }, targets: [soft.id] });
    const added = await h.users().addHumanUser({ profile: { givenName: "Soft", familyName: "Forward" }, email: { email: "soft@example.com" } });
    expect(added.userId).toMatch(/^\d+$/);
    expect(h.targets.callsTo("/soft-forward")).toHaveLength(1);
  });
});

describe("payloads without empty fields (Go's omitempty)", () => {
  it("leaves empty IDs and empty headers out of request payloads", () => {
    const body = encodeRequestPayload({ fullMethod: "/a.B/C", context: { instanceID: "i", orgID: "", userID: "" }, request: {}, headers: {} });
    expect(body).toBe('{"fullMethod":"/a.B/C","instanceID":"i","request":{}}');
  });

  it("leaves empty fields and a missing payload out of event payloads", () => {
    const body = encodeEventPayload({
      aggregateID: "u1",
      aggregateType: "user",
      resourceOwner: "",
      instanceID: "i",
      version: "v2",
      sequence: 0,
      eventType: "user.removed",
      createdAt: new Date("2025-01-02T03:04:05.600Z"),
      userID: "",
      payload: undefined,
    });
    expect(body).toBe('{"aggregateID":"u1","aggregateType":"user","instanceID":"i","version":"v2","event_type":"user.removed","created_at":"2025-01-02T03:04:05.6Z"}');
  });
});

describe("the sample's payloads, as ZITADEL's", () => {
  it("sends user.human.added with ZITADEL's fields, and user.removed without a payload", async () => {
    const hook = await h.actions().createTarget({ name: "events", targetType: { case: "restWebhook", value: {} }, endpoint: h.targets.endpoint("/events"), timeout: { seconds: 5n } });
    await h.actions().setExecution({ condition: { conditionType: { case: "event", value: { condition: { case: "all", value: true } } } }, targets: [hook.id] });
    const { userId } = await h.users().addHumanUser({
      username: "minnie",
      profile: { givenName: "Minnie", familyName: "Mouse", nickName: "Mini", preferredLanguage: "en", gender: 1 },
      email: { email: "mini@mouse.com" },
      phone: { phone: "+41790000000" },
    });
    await h.users().deleteUser({ userId });
    const [added, removed] = await h.targets.waitFor("/events", 2);
    expect(added!.json.event_payload).toEqual({
      userName: "minnie",
      firstName: "Minnie",
      lastName: "Mouse",
      nickName: "Mini",
      displayName: "Minnie Mouse",
      preferredLanguage: "en",
      gender: 1,
      email: "mini@mouse.com",
      phone: "+41790000000",
    });
    expect(added!.json).not.toHaveProperty("userID"); // no caller
    expect(removed!.json.event_type).toBe("user.removed");
    expect(removed!.json).not.toHaveProperty("event_payload");
  });

  it("sends preuserinfo's user as ZITADEL's user object, without protobuf internals", async () => {
    h.targets.route("/userinfo", { body: {} });
    const t = await h.actions().createTarget({ name: "ui", targetType: { case: "restCall", value: {} }, endpoint: h.targets.endpoint("/userinfo"), timeout: { seconds: 5n } });
    await h.actions().setExecution({ condition: { conditionType: { case: "function", value: { name: "preuserinfo" } } }, targets: [t.id] });
    const { userId } = await h.users().addHumanUser({
      organization: { org: { case: "orgId", value: "org-u" } },
      profile: { givenName: "Ada", familyName: "Lovelace", gender: 1 },
      email: { email: "ada@example.com", verification: { case: "isVerified", value: true } },
    });
    expect((await h.rest("GET", "/oidc/v1/userinfo", undefined, { authorization: `Bearer ${userId}` })).status).toBe(200);
    const [call] = await h.targets.waitFor("/userinfo", 1);
    expect(call!.body).not.toContain("$typeName");
    expect(call!.json.user).toEqual({
      id: userId,
      creation_date: expect.stringMatching(/Z$/),
      change_date: expect.stringMatching(/Z$/),
      resource_owner: "org-u",
      sequence: 1,
      state: 1,
      type: 1,
      username: "ada@example.com",
      login_names: ["ada@example.com"],
      preferred_login_name: "ada@example.com",
      human: {
        first_name: "Ada",
        last_name: "Lovelace",
        display_name: "Ada Lovelace",
        preferred_language: "und",
        gender: 1,
        email: "ada@example.com",
        is_email_verified: true,
      },
    });
    expect(Object.keys(call!.json)).toEqual(["function", "userinfo", "user", "org"]);
  });
});

describe("unknown methods", () => {
  it("answers an unknown gRPC method with grpc-status 12 over gRPC, gRPC-web and @grpc/grpc-js, and 404 over Connect", async () => {
    const transports = {
      grpc: createGrpcTransport({ baseUrl: h.server.url }),
      "grpc-web": createGrpcWebTransport({ baseUrl: h.server.url, httpVersion: "1.1" }),
    };
    for (const [name, transport] of Object.entries(transports)) {
      const error = await createClient(ZUserService, transport).setEmail({ userId: "u" }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      expect({ name, code: error?.code, message: error?.rawMessage }).toEqual({ name, code: Code.Unimplemented, message: "unknown method SetEmail for service zitadel.user.v2.UserService" });
    }
    const client = new grpc.Client(new URL(h.server.url).host, grpc.credentials.createInsecure());
    try {
      const status = await new Promise<{ code: number; details: string }>((resolve) =>
        client.makeUnaryRequest("/nope.v1.Nothing/Call", () => Buffer.alloc(0), (b: Buffer) => b, {}, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err) =>
          resolve({ code: err?.code ?? 0, details: err?.details ?? "" }),
        ),
      );
      expect(status).toEqual({ code: grpc.status.UNIMPLEMENTED, details: "unknown service nope.v1.Nothing" });
    } finally {
      client.close();
    }
    const connect = await fetch(`${h.server.url}/zitadel.user.v2.UserService/SetEmail`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(connect.status).toBe(404);
    const overConnect = await createClient(ZUserService, createConnectTransport({ baseUrl: h.server.url, httpVersion: "1.1" }))
      .setEmail({})
      .then(() => undefined, (e: unknown) => ConnectError.from(e));
    expect(overConnect?.code).toBe(Code.Unimplemented); // Connect maps HTTP 404 to unimplemented
  });
});
