import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await sleep(20);
  }
}

let h: SampleHarness;
beforeEach(async () => {
  h = await startSampleHarness({ eventWorker: { pollIntervalMs: 50, retry: { initialDelayMs: 50, maxDelayMs: 200 } } });
});
afterEach(async () => {
  await h.close();
});

async function webhook(name: string, path: string, timeout = "5s"): Promise<string> {
  const res = await h.actions().createTarget({
    name,
    targetType: { case: "restWebhook", value: { interruptOnError: false } },
    endpoint: h.targets.endpoint(path),
    timeout: { seconds: BigInt(parseInt(timeout, 10)) },
  });
  return res.id;
}

describe("sample events", () => {
  it("emits user events after each change, delivered to the best-matching event execution", async () => {
    const group = await webhook("group", "/group");
    const all = await webhook("all", "/all");
    await h.actions().setExecution({ condition: { conditionType: { case: "event", value: { condition: { case: "group", value: "user.human" } } } }, targets: [group] });
    await h.actions().setExecution({ condition: { conditionType: { case: "event", value: { condition: { case: "all", value: true } } } }, targets: [all] });
    const users = h.users();
    const headers = { "x-zitadel-orgid": "org-7", "x-zitadel-user": "admin-7" };
    const { userId } = await users.addHumanUser({ profile: { givenName: "Eve", familyName: "Event" }, email: { email: "eve@example.com" } }, { headers });
    await users.updateHumanUser({ userId, profile: { givenName: "Eva", familyName: "Event" } }, { headers });
    await users.deleteUser({ userId }, { headers });
    const groupCalls = await h.targets.waitFor("/group", 2);
    const allCalls = await h.targets.waitFor("/all", 1);
    expect(groupCalls.map((c) => [c.json.event_type, c.json.sequence])).toEqual([
      ["user.human.added", 1],
      ["user.human.changed", 2],
    ]);
    expect(allCalls.map((c) => [c.json.event_type, c.json.sequence])).toEqual([["user.removed", 3]]);
    expect(groupCalls[0]!.json).toMatchObject({
      aggregateID: userId,
      aggregateType: "user",
      resourceOwner: "org-7",
      instanceID: "sample-instance",
      version: "v2",
      userID: "admin-7",
      event_payload: { userName: "eve@example.com", firstName: "Eve", lastName: "Event", email: "eve@example.com" },
    });
    expect(groupCalls[0]!.json.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  });

  it("rejects event conditions for unknown events and groups", async () => {
    const t = await webhook("t", "/t");
    for (const condition of [
      { case: "event" as const, value: "user.teleported" },
      { case: "group" as const, value: "org" },
    ]) {
      const error = await h.actions()
        .setExecution({ condition: { conditionType: { case: "event", value: { condition } } }, targets: [t] })
        .catch((e: unknown) => ConnectError.from(e));
      expect((error as ConnectError).code).toBe(Code.NotFound);
    }
  });

  it("lists target calls of requests and events, with filters", async () => {
    h.targets.route("/broken", { status: 500 });
    const ok = await webhook("ok", "/ok");
    const broken = await webhook("broken", "/broken");
    await h.actions().setExecution({
      condition: { conditionType: { case: "request", value: { condition: { case: "method", value: "/zitadel.user.v2.UserService/AddHumanUser" } } } },
      targets: [ok, broken],
    });
    await h.actions().setExecution({ condition: { conditionType: { case: "event", value: { condition: { case: "event", value: "user.human.added" } } } }, targets: [ok] });
    await h.users().addHumanUser({ profile: { givenName: "L", familyName: "Og" }, email: { email: "log@example.com" } });
    await waitUntil(async () => (await h.actions().listTargetCalls({})).calls.length === 3);
    const { calls, pagination } = await h.actions().listTargetCalls({});
    expect(Number(pagination?.totalResult)).toBe(3);
    expect(calls.map((c) => [c.targetName, c.trigger, c.status, c.attempt])).toEqual([
      ["ok", "user.human.added", 200, 1],
      ["broken", "/zitadel.user.v2.UserService/AddHumanUser", 500, 1],
      ["ok", "/zitadel.user.v2.UserService/AddHumanUser", 200, 1],
    ]);
    expect(calls[1]!.error).toMatch(/status 500/);
    expect(calls[1]!.executionId).toBe("request/zitadel.user.v2.UserService/AddHumanUser");
    expect(calls[0]!.duration).toBeDefined();
    const failed = await h.actions("v2beta").listTargetCalls({ failedOnly: true });
    expect(failed.calls.map((c) => c.targetId)).toEqual([broken]);
    const byTarget = await h.rest("POST", "/v2/actions/targets/calls/search", { targetId: ok, pagination: { limit: 1 } }, h.auth);
    expect(byTarget.status).toBe(200);
    expect(byTarget.json.calls).toHaveLength(1);
    expect(byTarget.json.pagination).toEqual({ totalResult: "2", appliedLimit: "1" });
    const tooMany = await h.actions().listTargetCalls({ pagination: { limit: 1001 } }).catch((e: unknown) => ConnectError.from(e));
    expect((tooMany as ConnectError).code).toBe(Code.InvalidArgument);
  });

  it("lists event deliveries that were given up", async () => {
    h.targets.route("/gone", { status: 410 });
    const gone = await webhook("gone", "/gone");
    await h.actions().setExecution({ condition: { conditionType: { case: "event", value: { condition: { case: "all", value: true } } } }, targets: [gone] });
    const { userId } = await h.users().addHumanUser({ profile: { givenName: "D", familyName: "Ead" }, email: { email: "dead@example.com" } });
    await waitUntil(async () => (await h.actions().listFailedEventDeliveries({})).deliveries.length === 1);
    const [d] = (await h.actions().listFailedEventDeliveries({})).deliveries;
    expect(d).toMatchObject({ targetId: gone, executionId: "event", eventType: "user.human.added", attempts: 1 });
    expect(d!.error).toMatch(/status 410/);
    expect(JSON.parse(d!.body).aggregateID).toBe(userId);
    const rest = await h.rest("GET", "/v2beta/actions/events/failed", undefined, h.auth);
    expect(rest.status).toBe(200);
    expect(rest.json.deliveries).toHaveLength(1);
    expect((await h.rest("GET", "/v2beta/actions/events/failed")).status).toBe(401);
  });
});
