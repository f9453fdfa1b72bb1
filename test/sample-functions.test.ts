import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createSampleMetrics } from "../src/sample/metrics.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

let h: SampleHarness;
beforeEach(async () => {
  h = await startSampleHarness();
});
afterEach(async () => {
  await h.close();
});

async function callTarget(name: string, path: string, interruptOnError = false): Promise<string> {
  const { id } = await h.actions().createTarget({
    name,
    targetType: { case: "restCall", value: { interruptOnError } },
    endpoint: h.targets.endpoint(path),
    timeout: { seconds: 5n },
  });
  return id;
}

describe("sample userinfo with the preuserinfo function", () => {
  it("returns the user's claims, plus what the function's targets append, and stores the metadata they set", async () => {
    h.targets.route("/claims", (call) => ({
      body: {
        append_claims: [
          { key: "department", value: `dept-of-${call.json.user.id}` },
          { key: "email", value: "forged@example.com" },
        ],
        append_log_claims: ["enriched"],
        set_user_metadata: [{ key: "last_userinfo", value: Buffer.from("yes").toString("base64") }],
      },
    }));
    const t = await callTarget("claims", "/claims");
    await h.actions().setExecution({ condition: { conditionType: { case: "function", value: { name: "preuserinfo" } } }, targets: [t] });
    const { userId } = await h.users().addHumanUser({ profile: { givenName: "Ada", familyName: "L" }, email: { email: "ada@example.com" } });
    const res = await h.rest("GET", "/oidc/v1/userinfo", undefined, { authorization: `Bearer ${userId}` });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({
      sub: userId,
      given_name: "Ada",
      email: "ada@example.com",
      department: `dept-of-${userId}`,
      "urn:zitadel:iam:action:function/preuserinfo:log": ['key "email" already exists', "enriched"],
    });
    const [call] = h.targets.callsTo("/claims");
    expect(call!.json).toMatchObject({ function: "function/preuserinfo", userinfo: { sub: userId } });
    expect(call!.json).not.toHaveProperty("user_metadata"); // none yet: left out, as ZITADEL does
    // The metadata the target set is in the payload of the next call.
    expect((await h.rest("GET", "/oidc/v1/userinfo", undefined, { authorization: `Bearer ${userId}` })).status).toBe(200);
    const next = h.targets.callsTo("/claims")[1]!;
    expect(next.json.user_metadata).toEqual([{ key: "last_userinfo", value: Buffer.from("yes").toString("base64") }]);
  });

  it("answers 401 without a known user and 400 when an interrupting target fails", async () => {
    expect((await h.rest("GET", "/oidc/v1/userinfo")).status).toBe(401);
    expect((await h.rest("GET", "/oidc/v1/userinfo", undefined, { authorization: "Bearer nobody" })).status).toBe(401);
    h.targets.route("/down", { status: 503 });
    const t = await callTarget("down", "/down", true);
    await h.actions().setExecution({ condition: { conditionType: { case: "function", value: { name: "preuserinfo" } } }, targets: [t] });
    const { userId } = await h.users().addHumanUser({ profile: { givenName: "B", familyName: "C" }, email: { email: "b@example.com" } });
    const res = await h.rest("GET", "/oidc/v1/userinfo", undefined, { authorization: `Bearer ${userId}` });
    expect(res.status).toBe(400);
    expect(res.json).toEqual({ error: "server_error", error_description: "Execution failed" });
  });
});

describe("sample metrics", () => {
  it("counts a call off the RPC's path, yet a scrape right after it sees the call", async () => {
    const metrics = createSampleMetrics({ processMetrics: false });
    const record = {
      instanceId: "", targetId: "1", targetName: "t", executionId: "request", trigger: "/a.B/C", endpoint: "http://127.0.0.1:9/",
      status: 200, durationMs: 3, error: undefined, attempt: 1, async: false, startTime: new Date(),
    };
    metrics.record(record);
    metrics.record({ ...record, status: 500, error: "target \"t\" answered status 500" });
    // No I/O turn in between: only the scrape itself can have counted them.
    const text = await metrics.registry.metrics();
    expect(text).toContain('connect_actions_target_calls_total{instance="",target="t",execution="request",outcome="ok",async="false"} 1');
    expect(text).toContain('connect_actions_target_calls_total{instance="",target="t",execution="request",outcome="error",async="false"} 1');
    expect(text).toContain('connect_actions_target_call_duration_seconds_count{instance="",target="t",outcome="error"} 1');
    // Counted once: the deferred count that follows finds nothing left.
    await new Promise((resolve) => setImmediate(resolve));
    expect(await metrics.registry.metrics()).toContain('connect_actions_target_calls_total{instance="",target="t",execution="request",outcome="ok",async="false"} 1');
  });

  it("serves Prometheus metrics of target calls and pending event deliveries", async () => {
    const t = await callTarget("counted", "/counted");
    let brokenCalls = 0;
    h.targets.route("/broken", () => (++brokenCalls === 2 ? { status: 200 } : { status: 500 }));
    const broken = await callTarget("broken", "/broken");
    const { id: later } = await h.actions().createTarget({
      name: "later",
      targetType: { case: "restAsync", value: {} },
      endpoint: h.targets.endpoint("/counted"),
      timeout: { seconds: 5n },
    });
    await h.actions().setExecution({
      condition: { conditionType: { case: "request", value: { condition: { case: "service", value: "zitadel.user.v2.UserService" } } } },
      targets: [t, broken, later],
    });
    await h.users().listUsers({});
    await h.users().listUsers({});
    await h.users().listUsers({});
    const series = (text: string, name: string) => text.split("\n").find((line) => line.startsWith(name))?.split(" ").at(-1);
    const calls = (target: string, outcome: string, async: boolean) =>
      `connect_actions_target_calls_total{instance="sample-instance",target="${target}",execution="request/zitadel.user.v2.UserService",outcome="${outcome}",async="${async}"}`;
    let text = "";
    await expect.poll(async () => {
      const res = await fetch(`${h.server.url}/metrics`);
      expect(res.status).toBe(200);
      text = await res.text();
      return series(text, calls("later", "ok", true));
    }, { timeout: 5000 }).toBe("3");
    expect(series(text, calls("counted", "ok", false))).toBe("3");
    expect(series(text, calls("broken", "error", false))).toBe("2");
    expect(series(text, calls("broken", "ok", false))).toBe("1");
    expect(text).not.toContain(calls("counted", "error", false));
    expect(series(text, 'connect_actions_target_call_duration_seconds_count{instance="sample-instance",target="counted",outcome="ok"}')).toBe("3");
    expect(series(text, 'connect_actions_target_call_duration_seconds_count{instance="sample-instance",target="broken",outcome="error"}')).toBe("2");
    expect(series(text, 'connect_actions_target_call_duration_seconds_count{instance="sample-instance",target="broken",outcome="ok"}')).toBe("1");
    expect(series(text, 'connect_actions_target_call_duration_seconds_count{instance="sample-instance",target="later",outcome="ok"}')).toBe("3");
    expect(text).toContain("connect_actions_event_deliveries_pending 0");
    expect(text).toContain("process_cpu_user_seconds_total");
  });
});
