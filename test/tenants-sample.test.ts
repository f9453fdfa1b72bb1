// The sample per instance: the Host picks the instance of requests (executions, events, functions, users),
// ACTIONS_INSTANCE_TOKENS gives each host its own token, and unknown hosts are "sample-instance".
import { Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import { parseInstanceTokens } from "../src/sample/instance-tokens.js";
import { startSampleServer } from "../src/sample/sample-server.js";
import { codeOf } from "../src/testing/support.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";
import { loopbackAgent, loopbackLookup } from "./helpers/tenant-client.js";

let h: SampleHarness;
beforeAll(async () => {
  h = await startSampleHarness({
    instanceTokens: { "a.localhost": "token-a", "B.Localhost": "token-b" },
    eventWorker: { pollIntervalMs: 50, retry: { initialDelayMs: 50, maxDelayMs: 200 } },
  });
});
afterAll(async () => {
  await h?.close();
});

const bearer = (token: string): Interceptor => (next) => (req) => {
  req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};
const baseUrl = (host: string) => `http://${host}:${h.server.port}`;
const transport = (host: string, interceptors: Interceptor[] = []) =>
  createConnectTransport({ baseUrl: baseUrl(host), httpVersion: "1.1", interceptors, nodeOptions: { lookup: loopbackLookup } });
const admin = (host: string, token: string) => createClient(ActionServiceV2, transport(host, [bearer(token)]));
const users = (host: string) => createClient(UserService, transport(host));
let n = 0;
const newUser = (givenName: string) => ({ profile: { givenName, familyName: "T" }, email: { email: `${givenName.toLowerCase()}${++n}@example.com` } });

async function webhook(host: string, token: string, path: string): Promise<string> {
  const { id } = await admin(host, token).createTarget({
    name: `hook ${path}`,
    targetType: { case: "restWebhook", value: { interruptOnError: false } },
    endpoint: h.targets.endpoint(path),
    timeout: { seconds: 5n },
  });
  return id;
}

describe("the sample with instances by host", () => {
  it("maps hosts to instances: the configured hosts are their own, any other host is sample-instance", () => {
    expect(h.server.instanceID).toBe("sample-instance");
    expect(h.server.instanceOfHost("a.localhost")).toBe("a.localhost");
    expect(h.server.instanceOfHost("b.localhost:8080")).toBe("b.localhost");
    expect(h.server.instanceOfHost("A.LOCALHOST")).toBe("a.localhost");
    expect(h.server.instanceOfHost("c.localhost")).toBe("sample-instance");
    expect(h.server.instanceOfHost("127.0.0.1")).toBe("sample-instance");
  });

  it("serves each host's own signing keys at /oauth/v2/keys", async () => {
    const kids = async (host: string) => {
      const res = await undiciFetch(`${baseUrl(host)}/oauth/v2/keys`, { dispatcher: loopbackAgent });
      expect(res.status).toBe(200);
      return ((await res.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
    };
    // Keys are made on first use (the first JWT or JWE payload of the instance).
    for (const instance of ["a.localhost", "b.localhost", "sample-instance"]) await h.server.signingKeys.signingKey(instance);
    const [a, b, other] = [await kids("a.localhost"), await kids("b.localhost"), await kids("c.localhost")];
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
    expect(a).not.toEqual(b);
    expect(other).not.toEqual(a);
    expect(await kids("A.LOCALHOST")).toEqual(a);
  });

  it("delivers each instance's events to its own event executions, with its instance ID", async () => {
    const onA = await webhook("a.localhost", "token-a", "/events-a");
    await admin("a.localhost", "token-a").setExecution({
      condition: { conditionType: { case: "event", value: { condition: { case: "event", value: "user.human.added" } } } },
      targets: [onA],
    });
    const onDefault = await webhook("localhost", h.server.adminToken, "/events-default");
    await admin("localhost", h.server.adminToken).setExecution({
      condition: { conditionType: { case: "event", value: { condition: { case: "event", value: "user.human.added" } } } },
      targets: [onDefault],
    });
    const { userId: inA } = await users("a.localhost").addHumanUser(newUser("Ann"));
    const { userId: inB } = await users("b.localhost").addHumanUser(newUser("Ben"));
    const { userId: inDefault } = await users("127.0.0.1").addHumanUser(newUser("Dee"));
    const [toA] = await h.targets.waitFor("/events-a", 1);
    const [toDefault] = await h.targets.waitFor("/events-default", 1);
    expect([toA!.json.aggregateID, toA!.json.instanceID]).toEqual([inA, "a.localhost"]);
    expect([toDefault!.json.aggregateID, toDefault!.json.instanceID]).toEqual([inDefault, "sample-instance"]);
    // b has no event execution: Ben's event went nowhere, and nobody else's went twice.
    await h.server.dispatcher.idle();
    expect(h.targets.callsTo("/events-a").map((c) => c.json.aggregateID)).toEqual([inA]);
    expect(h.targets.callsTo("/events-default").map((c) => c.json.aggregateID)).toEqual([inDefault]);
    expect(inB).not.toBe("");
  });

  it("keeps each instance's users apart", async () => {
    const { userId } = await users("a.localhost").addHumanUser(newUser("Ada"));
    expect((await users("a.localhost").getUserByID({ userId })).user?.userId).toBe(userId);
    expect(await codeOf(users("b.localhost").getUserByID({ userId }))).toBe(Code.NotFound);
    expect(await codeOf(users("localhost").getUserByID({ userId }))).toBe(Code.NotFound);
    expect((await users("b.localhost").listUsers({})).result.map((u) => u.userId)).not.toContain(userId);
  });

  it("runs the preuserinfo function of the instance of the userinfo request's host", async () => {
    h.targets.route("/claims-a", { body: { append_claims: [{ key: "tenant", value: "a" }] } });
    const fn = await admin("a.localhost", "token-a").createTarget({
      name: "claims",
      targetType: { case: "restCall", value: { interruptOnError: true } },
      endpoint: h.targets.endpoint("/claims-a"),
      timeout: { seconds: 5n },
    });
    await admin("a.localhost", "token-a").setExecution({
      condition: { conditionType: { case: "function", value: { name: "preuserinfo" } } },
      targets: [fn.id],
    });
    const userinfo = async (host: string, userId: string) => {
      const res = await undiciFetch(`${baseUrl(host)}/oidc/v1/userinfo`, { headers: { authorization: `Bearer ${userId}` }, dispatcher: loopbackAgent });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const { userId: inA } = await users("a.localhost").addHumanUser(newUser("Amy"));
    const { userId: inB } = await users("b.localhost").addHumanUser(newUser("Bea"));
    expect(await userinfo("a.localhost", inA)).toMatchObject({ status: 200, json: { sub: inA, tenant: "a" } });
    const ofB = await userinfo("b.localhost", inB);
    expect(ofB.status).toBe(200);
    expect(ofB.json.tenant).toBeUndefined();
    // A user of a is unknown on b's host.
    expect((await userinfo("b.localhost", inA)).status).toBe(401);
    // Only a's user on a's host ran a's function.
    expect(h.targets.callsTo("/claims-a").map((c) => c.json.user.id)).toEqual([inA]);
  });

  it("accepts each host's token on its host only, and the admin token on every host", async () => {
    expect((await admin("a.localhost", "token-a").listTargets({})).targets.length).toBeGreaterThan(0);
    expect(await codeOf(admin("b.localhost", "token-a").listTargets({}))).toBe(Code.PermissionDenied);
    expect(await codeOf(admin("localhost", "token-b").listTargets({}))).toBe(Code.PermissionDenied);
    expect((await admin("b.localhost", "token-b").listTargets({})).targets).toEqual([]);
    for (const host of ["a.localhost", "b.localhost", "localhost"]) {
      expect(await codeOf(admin(host, h.server.adminToken).listTargets({}))).toBe("resolved");
    }
  });
});

describe("ACTIONS_INSTANCE_TOKENS", () => {
  it("reads comma-separated host=token pairs", () => {
    expect(parseInstanceTokens("")).toEqual({});
    expect(parseInstanceTokens("a.localhost=token-a, B.localhost = token=b== ,")).toEqual({ "a.localhost": "token-a", "b.localhost": "token=b==" });
  });

  it.each([
    ["a pair without =", "a.localhost"],
    ["a host with a port", "a.localhost:8080=t"],
    ["a host with a path", "a.localhost/x=t"],
    ["an empty token", "a.localhost="],
    ["a host given twice", "a.localhost=t1,A.localhost=t2"],
    ["a token of two hosts", "a.localhost=t,b.localhost=t"],
  ])("refuses %s, naming the entry", (_, text) => {
    expect(() => parseInstanceTokens(text)).toThrow(/entry \d/);
  });

  it("makes the sample refuse a host with a port, or an instance token that is the admin token", async () => {
    await expect(startSampleServer({ instanceTokens: { "a.localhost:1": "t" }, processMetrics: false })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
    await expect(startSampleServer({ adminToken: "same", instanceTokens: { "a.localhost": "same" }, processMetrics: false })).rejects.toMatchObject({
      code: Code.InvalidArgument,
    });
  });
});
