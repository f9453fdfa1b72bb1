// Issue 11: TestTarget sends the payload a real call would send for a condition (empty request and response
// messages, the caller's instance) through the real dispatcher (signature, payload type, hop header, timeout), and
// reports the status, the latency, the error and excerpts, and for call targets whether the answer parses as the
// message the target would replace. A failing target is reported, not an RPC error. The call is in the delivery
// log, marked as a test.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PayloadType } from "../gen/zitadel/action/v2/target_pb.js";
import { hopHeader } from "../src/dispatch/hop.js";
import { signatureHeader, verifySignature } from "../src/dispatch/signature.js";
import { redacted } from "../src/dispatch/excerpt.js";
import { clearStore } from "./helpers/clear-store.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

const addHumanUser = "/zitadel.user.v2.UserService/AddHumanUser";
const requestOf = (method: string) => ({ conditionType: { case: "request" as const, value: { condition: { case: "method" as const, value: method } } } });
const responseOf = (method: string) => ({ conditionType: { case: "response" as const, value: { condition: { case: "method" as const, value: method } } } });
const eventOf = (event: string) => ({ conditionType: { case: "event" as const, value: { condition: { case: "event" as const, value: event } } } });
const functionOf = (name: string) => ({ conditionType: { case: "function" as const, value: { name } } });

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
});

const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => ConnectError.from(e));

async function createTarget(
  name: string,
  path: string,
  type: "restWebhook" | "restCall" | "restAsync" = "restWebhook",
  extra: { timeout?: { seconds?: bigint; nanos?: number }; payloadType?: PayloadType } = {},
): Promise<{ id: string; signingKey: string }> {
  const res = await h.actions("v2").createTarget({
    name,
    targetType: type === "restAsync" ? { case: type, value: {} } : { case: type, value: { interruptOnError: true } },
    endpoint: h.targets.endpoint(path),
    timeout: extra.timeout ?? { seconds: 5n },
    payloadType: extra.payloadType,
  });
  return { id: res.id, signingKey: res.signingKey };
}

describe("TestTarget", () => {
  it("sends the signed payload of an empty request to a webhook and reports its 200, and records the call as a test", async () => {
    const { id, signingKey } = await createTarget("hook", "/hook");
    const result = await h.actions("v2").testTarget({ id, condition: requestOf(addHumanUser) });
    expect(result).toMatchObject({ status: 200, error: "", answerExcerpt: "", parseError: "" });
    expect(result.answerParses).toBeUndefined();
    expect(result.latency).toBeDefined();
    const [received] = h.targets.callsTo("/hook");
    // The payload a real call sends: the method, the caller's instance, the empty request message, the headers.
    expect(received!.json).toMatchObject({ fullMethod: addHumanUser, instanceID: h.server.instanceID, request: {} });
    expect(received!.json.headers).toBeDefined();
    expect(() => verifySignature(received!.body, received!.headers[signatureHeader.toLowerCase()], signingKey)).not.toThrow();
    expect(received!.headers[hopHeader.toLowerCase()]).toBe("1");
    // The excerpt is that payload, header values left out.
    const excerpt = JSON.parse(result.payloadExcerpt);
    expect(excerpt).toMatchObject({ fullMethod: addHumanUser, instanceID: h.server.instanceID, request: {} });
    expect(Object.values(excerpt.headers)).toEqual(Object.keys(received!.json.headers).map(() => redacted));

    await h.server.deliveryLog.flush();
    const { calls } = await h.actions().listTargetCalls({ targetId: id });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ test: true, status: 200, trigger: addHumanUser, executionId: "", requestExcerpt: result.payloadExcerpt });
    const rest = await h.rest("POST", "/v2/actions/targets/calls/search", { targetId: id, succeededOnly: true }, h.auth);
    expect(rest.json.calls).toEqual([expect.objectContaining({ test: true, requestExcerpt: result.payloadExcerpt })]);
    const both = await h.rest("POST", "/v2/actions/targets/calls/search", { failedOnly: true, succeededOnly: true }, h.auth);
    expect([both.status, both.json.message]).toEqual([400, "failed_only and succeeded_only cannot both be set"]);
  });

  it("reports a 500 and a timeout as a real call would, without failing the RPC", async () => {
    h.targets.route("/fail", { status: 500, body: { error: "boom", secret: "s3" } });
    const fail = await createTarget("fail", "/fail");
    const failed = await h.actions("v2beta").testTarget({ id: fail.id, condition: responseOf(addHumanUser) });
    expect(failed.$typeName).toBe("zitadel.action.v2beta.TestTargetResponse");
    expect(failed).toMatchObject({ status: 500, error: 'target "fail" answered status 500' });
    expect(JSON.parse(failed.answerExcerpt)).toEqual({ error: "boom", secret: redacted });
    expect(JSON.parse(failed.payloadExcerpt)).toMatchObject({ request: {}, response: {} });

    h.targets.route("/slow", { delayMs: 3000 });
    const slow = await createTarget("slow", "/slow", "restWebhook", { timeout: { nanos: 200_000_000 } });
    const timedOut = await h.actions().testTarget({ id: slow.id, condition: requestOf(addHumanUser) });
    expect(timedOut.status).toBe(0);
    expect(timedOut.error).toMatch(/^target "slow" timed out/);
    expect(timedOut.answerExcerpt).toBe("");
    await h.server.deliveryLog.flush();
    const failedCalls = await h.actions().listTargetCalls({ failedOnly: true });
    expect(failedCalls.calls.map((c) => [c.targetName, c.test])).toEqual([
      ["slow", true],
      ["fail", true],
    ]);
  });

  it("tells whether a call target's answer parses as the message it would replace", async () => {
    const call = await createTarget("call", "/call", "restCall");
    h.targets.route("/call", { body: { profile: { givenName: "Ada" }, token: "abc" } });
    // "token" is not a field of AddHumanUserRequest: the interceptor would fail the call.
    const unknownField = await h.actions().testTarget({ id: call.id, condition: requestOf(addHumanUser) });
    expect(unknownField).toMatchObject({ status: 200, error: "", answerParses: false });
    expect(unknownField.parseError).toMatch(/^target "call" answered a body that is not a zitadel.user.v2.AddHumanUserRequest: /);
    expect(JSON.parse(unknownField.answerExcerpt)).toEqual({ profile: { givenName: "Ada" }, token: redacted });

    h.targets.route("/call", { body: { profile: { givenName: "Ada", familyName: "Lovelace" } } });
    const parses = await h.actions().testTarget({ id: call.id, condition: requestOf(addHumanUser) });
    expect(parses).toMatchObject({ answerParses: true, parseError: "" });
    // As the response message: AddHumanUserResponse has no profile.
    const asResponse = await h.actions().testTarget({ id: call.id, condition: responseOf(addHumanUser) });
    expect(asResponse.answerParses).toBe(false);
    expect(asResponse.parseError).toMatch(/zitadel.user.v2.AddHumanUserResponse/);
    h.targets.route("/call", { body: { userId: "u1" } });
    expect((await h.actions().testTarget({ id: call.id, condition: responseOf(addHumanUser) })).answerParses).toBe(true);
    // An empty answer changes nothing: it parses.
    h.targets.route("/call", {});
    expect((await h.actions().testTarget({ id: call.id, condition: requestOf(addHumanUser) })).answerParses).toBe(true);
    // Not JSON: the call fails, and the answer does not parse.
    h.targets.route("/call", { body: "<html>oops</html>" });
    const html = await h.actions().testTarget({ id: call.id, condition: requestOf(addHumanUser) });
    expect(html).toMatchObject({ status: 200, error: 'target "call" answered a body that is not JSON', answerParses: false, answerExcerpt: "<html>oops</html>" });
    expect(html.parseError).toBe(html.error);
  });

  it("sends a function's sample payload and checks the answer against the function's contract", async () => {
    const call = await createTarget("fn", "/fn", "restCall");
    h.targets.route("/fn", { body: { append_claims: [{ key: "k", value: 1 }], ignored: true } });
    const ok = await h.actions().testTarget({ id: call.id, condition: functionOf("preuserinfo") });
    expect(ok).toMatchObject({ status: 200, answerParses: true });
    expect(h.targets.callsTo("/fn")[0]!.json).toMatchObject({ function: "function/preuserinfo", userinfo: { sub: "sample-user" } });
    h.targets.route("/fn", { body: { append_claims: "not a list" } });
    const broken = await h.actions().testTarget({ id: call.id, condition: functionOf("preuserinfo") });
    expect(broken).toMatchObject({ status: 200, error: "", answerParses: false, parseError: "function preuserinfo: append_claims must be a list" });
    h.targets.route("/fn", { body: { append_attribute: [{ name: "a", name_format: "f", value: ["v"] }] } });
    expect((await h.actions().testTarget({ id: call.id, condition: functionOf("presamlresponse") })).answerParses).toBe(true);
  });

  it("sends a sample event of the type, status only", async () => {
    const call = await createTarget("event", "/event", "restCall");
    h.targets.route("/event", { body: "not json" });
    const result = await h.actions().testTarget({ id: call.id, condition: eventOf("user.human.added") });
    // Event deliveries look at the status only: the body does not matter, nothing parses it.
    expect(result).toMatchObject({ status: 200, error: "" });
    expect(result.answerParses).toBeUndefined();
    expect(h.targets.callsTo("/event")[0]!.json).toMatchObject({ event_type: "user.human.added", instanceID: h.server.instanceID, aggregateType: "user" });
  });

  it("signs a JWT target's payload: the excerpt is the JSON, the wire a JWT", async () => {
    const jwt = await createTarget("jwt", "/jwt", "restWebhook", { payloadType: PayloadType.JWT });
    const result = await h.actions().testTarget({ id: jwt.id, condition: requestOf(addHumanUser) });
    expect(result).toMatchObject({ status: 200, error: "" });
    const [received] = h.targets.callsTo("/jwt");
    expect(received!.body).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const claims = JSON.parse(Buffer.from(received!.body.split(".")[1]!, "base64url").toString("utf8"));
    expect(claims).toMatchObject({ fullMethod: addHumanUser });
    expect(JSON.parse(result.payloadExcerpt)).toMatchObject({ fullMethod: addHumanUser, request: {} });
    expect(() => verifySignature(received!.body, received!.headers[signatureHeader.toLowerCase()], jwt.signingKey)).not.toThrow();
  });

  it("answers over REST", async () => {
    const { id } = await createTarget("rest", "/rest");
    const res = await h.rest("POST", `/v2/actions/targets/${id}/test`, { condition: { request: { method: addHumanUser } } }, h.auth);
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ status: 200, payloadExcerpt: expect.stringContaining(addHumanUser) });
    expect(res.json.latency).toMatch(/^\d+(\.\d+)?s$/);
    expect(res.json).not.toHaveProperty("answerParses");
    const beta = await h.rest("POST", `/v2beta/actions/targets/${id}/test`, { condition: { function: { name: "preuserinfo" } } }, h.auth);
    expect(beta.json.status).toBe(200);
    expect((await h.rest("POST", `/v2/actions/targets/${id}/test`, { condition: { request: { method: addHumanUser } } })).status).toBe(401);
  });

  it("finds targets of the caller's instance only, and validates the condition", async () => {
    const { id } = await createTarget("mine", "/mine");
    const other = await h.server.actionStore.forInstance("other").createTarget({ name: "other", type: "webhook", endpoint: h.targets.endpoint("/other"), timeoutMs: 1000 });
    const client = h.actions();
    expect((await errorOf(client.testTarget({ id: "999999", condition: requestOf(addHumanUser) })))?.code).toBe(Code.NotFound);
    expect((await errorOf(client.testTarget({ id: other.id, condition: requestOf(addHumanUser) })))?.code).toBe(Code.NotFound);
    expect(h.targets.callsTo("/other")).toEqual([]);
    const cases: [object, Code, RegExp][] = [
      [{ id }, Code.InvalidArgument, /^condition is required$/],
      [{ condition: requestOf(addHumanUser) }, Code.InvalidArgument, /^id must not be empty$/],
      [{ id, condition: { conditionType: { case: "request", value: { condition: { case: "service", value: "zitadel.user.v2.UserService" } } } } }, Code.InvalidArgument, /^condition\.request\.method is required/],
      [{ id, condition: { conditionType: { case: "response", value: { condition: { case: "all", value: true } } } } }, Code.InvalidArgument, /^condition\.response\.method is required/],
      [{ id, condition: { conditionType: { case: "event", value: { condition: { case: "group", value: "user" } } } } }, Code.InvalidArgument, /^condition\.event\.event is required/],
      [{ id, condition: requestOf("/no.Such/Method") }, Code.NotFound, /^condition: method/],
      [{ id, condition: eventOf("no.such") }, Code.NotFound, /^condition: event type/],
      [{ id, condition: functionOf("nope") }, Code.NotFound, /^condition: function/],
    ];
    for (const [req, code, message] of cases) {
      const error = await errorOf(client.testTarget(req));
      expect([JSON.stringify(req), error?.code]).toEqual([JSON.stringify(req), code]);
      expect(error?.rawMessage).toMatch(message);
    }
    expect(h.targets.calls).toEqual([]);
  });
});
