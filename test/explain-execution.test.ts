// Issue 11: ExplainExecution. The plan's explain follows the same levels as forMethod, forEvent and forFunction
// (matchLevels), and the ActionService answers with it over Connect (v2, v2beta) and REST; what it says runs is
// what the interceptor calls.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Condition } from "../src/condition.js";
import { executionId } from "../src/condition.js";
import type { Execution, ExecutionTarget } from "../src/execution.js";
import { compileExecutionPlan, type ExecutionPlan, matchLevels } from "../src/plan/execution-plan.js";
import type { Target } from "../src/target.js";
import { clearStore } from "./helpers/clear-store.js";
import { addUser } from "./helpers/intercepted-server.js";
import { createPrng } from "./helpers/prng.js";
import { type ApiVersion, type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

const date = new Date(0);
const target = (id: string, type: Target["type"] = "webhook"): Target => ({
  id, name: `name-${id}`, type, interruptOnError: type !== "async", endpoint: `http://t/${id}`, timeoutMs: 1500,
  instanceId: "", signingKey: "k".repeat(36), payloadType: "json", creationDate: date, changeDate: date,
});
const execution = (condition: Condition, targets: ExecutionTarget[]): Execution => ({
  id: executionId(condition), condition, targets, creationDate: date, changeDate: date,
});
const ids = (targets: readonly { target: Target }[]) => targets.map((t) => t.target.id);

describe("ExecutionPlan.explain", () => {
  const targets = ["a", "b", "c", "d", "e"].map((id) => target(id));

  it("looks at the method, its service and all, and matches the most specific that exists", () => {
    const plan = compileExecutionPlan({
      targets,
      executions: [
        execution({ type: "request", all: true }, [{ target: "a" }]),
        execution({ type: "request", service: "p.S" }, [{ target: "b" }]),
        execution({ type: "request", method: "/p.S/M" }, [{ target: "c" }]),
      ],
    });
    const m = plan.explain({ type: "request", method: "/p.S/M" });
    expect(m.match?.executionId).toBe("request/p.S/M");
    expect(m.levels).toEqual([
      { executionId: "request/p.S/M", exists: true, matched: true },
      { executionId: "request/p.S", exists: true, matched: false },
      { executionId: "request", exists: true, matched: false },
    ]);
    expect(ids(m.targets)).toEqual(["c"]);
    const other = plan.explain({ type: "request", method: "/p.S/Other" });
    expect(other.levels.map((l) => [l.exists, l.matched])).toEqual([[false, false], [true, true], [true, false]]);
    expect(ids(other.targets)).toEqual(["b"]);
    expect(plan.explain({ type: "request", method: "/q.T/M" }).match?.executionId).toBe("request");
    expect(plan.explain({ type: "request", service: "q.T" }).levels.map((l) => l.executionId)).toEqual(["request/q.T", "request"]);
    expect(plan.explain({ type: "request", all: true }).levels.map((l) => l.executionId)).toEqual(["request"]);
    // Response executions are apart.
    expect(plan.explain({ type: "response", method: "/p.S/M" }).match).toBeUndefined();
  });

  it("expands includes depth first, each target with the chain of executions that reaches it", () => {
    const plan = compileExecutionPlan({
      targets,
      executions: [
        execution({ type: "request", method: "/p.S/M" }, [{ target: "a" }, { include: "function/f" }, { target: "b" }, { include: "function/g" }]),
        execution({ type: "function", name: "f" }, [{ target: "c" }, { include: "function/h" }]),
        execution({ type: "function", name: "h" }, [{ target: "d" }, { target: "a" }]),
        execution({ type: "function", name: "g" }, [{ target: "e" }, { target: "unknown" }]),
      ],
    });
    const m = plan.explain({ type: "request", method: "/p.S/M" });
    expect(m.targets.map((t) => [t.target.id, t.via])).toEqual([
      ["a", ["request/p.S/M"]],
      ["c", ["request/p.S/M", "function/f"]],
      ["d", ["request/p.S/M", "function/f", "function/h"]],
      ["b", ["request/p.S/M"]],
      ["e", ["request/p.S/M", "function/g"]],
    ]);
    // The same targets, in the same order, as the match the interceptor runs.
    expect(ids(m.targets)).toEqual(m.match!.targets.map((t) => t.id));
    expect(plan.forMethod("/p.S/M").request).toBe(m.match);
  });

  it("looks at an event, its groups longest first, then all", () => {
    const plan = compileExecutionPlan({
      targets,
      executions: [
        execution({ type: "event", all: true }, [{ target: "a" }]),
        execution({ type: "event", group: "user.human" }, [{ target: "b" }]),
      ],
    });
    const m = plan.explain({ type: "event", event: "user.human.added" });
    expect(m.levels).toEqual([
      { executionId: "event/user.human.added", exists: false, matched: false },
      { executionId: "event/user.human.*", exists: true, matched: true },
      { executionId: "event/user.*", exists: false, matched: false },
      { executionId: "event", exists: true, matched: false },
    ]);
    expect(m.match).toBe(plan.forEvent("user.human.added"));
    expect(plan.explain({ type: "event", group: "user.human" }).levels.map((l) => l.executionId)).toEqual([
      "event/user.human.*",
      "event/user.*",
      "event",
    ]);
    expect(plan.explain({ type: "event", event: "org.added" }).match?.executionId).toBe("event");
    expect(matchLevels({ type: "event", event: "single" })).toEqual(["event/single", "event"]);
  });

  it("looks at a function's own execution only", () => {
    const plan = compileExecutionPlan({ targets, executions: [execution({ type: "function", name: "preuserinfo" }, [{ target: "a" }])] });
    expect(plan.explain({ type: "function", name: "preuserinfo" })).toMatchObject({
      match: { executionId: "function/preuserinfo" },
      levels: [{ executionId: "function/preuserinfo", exists: true, matched: true }],
    });
    expect(plan.explain({ type: "function", name: "preaccesstoken" })).toEqual({
      match: undefined,
      targets: [],
      levels: [{ executionId: "function/preaccesstoken", exists: false, matched: false }],
    });
  });

  it("agrees with forMethod, forEvent and forFunction on random stores, includes and cycles too", () => {
    const g = createPrng(0x11_e4_91a1);
    const services = ["p.A", "p.B"];
    const methods = services.flatMap((s) => ["One", "Two"].map((m) => `/${s}/${m}`));
    const events = ["user.human.added", "user.human.changed", "user.removed", "org.added", "x"];
    const functions = ["f1", "f2"];
    const conditions: Condition[] = [
      ...(["request", "response"] as const).flatMap((type) => [
        { type, all: true } as const,
        ...services.map((service) => ({ type, service })),
        ...methods.map((method) => ({ type, method })),
      ]),
      { type: "event", all: true },
      ...["user", "user.human", "org"].map((group) => ({ type: "event" as const, group })),
      ...events.map((event) => ({ type: "event" as const, event })),
      ...functions.map((name) => ({ type: "function" as const, name })),
    ];
    const allIds = conditions.map(executionId);
    let checked = 0;
    for (let round = 0; round < 300; round++) {
      const pool = Array.from({ length: g.between(0, 6) }, (_, i) => target(`t${i}`, g.pick(["webhook", "call", "async"] as const)));
      // Lists as stores keep them: no entry twice (unknown targets and include cycles may remain).
      const unique = (entries: ExecutionTarget[]) => [...new Map(entries.map((e) => [JSON.stringify(e), e])).values()];
      const executions = conditions
        .filter(() => g.chance(0.35))
        .map((c) =>
          execution(
            c,
            unique(
              Array.from({ length: g.between(1, 4) }, (): ExecutionTarget =>
                g.chance(0.3) ? { include: g.pick(allIds) } : { target: g.chance(0.9) && pool.length > 0 ? g.pick(pool).id : "gone" },
              ),
            ),
          ),
        );
      const plan: ExecutionPlan = compileExecutionPlan({ targets: pool, executions });
      const check = (condition: Condition, expected: ReturnType<ExecutionPlan["forEvent"]>) => {
        const e = plan.explain(condition);
        expect(e.match).toBe(expected);
        expect(ids(e.targets)).toEqual(expected?.targets.map((t) => t.id) ?? []);
        expect(e.levels.filter((l) => l.matched).map((l) => l.executionId)).toEqual(expected === undefined ? [] : [expected.executionId]);
        expect(e.levels.map((l) => l.exists)).toEqual(e.levels.map((l) => plan.byId(l.executionId) !== undefined));
        for (const { target: t, via } of e.targets) {
          // The chain starts at the match, each step is an include of the one before, the last lists the target.
          expect(via[0]).toBe(expected!.executionId);
          for (let i = 1; i < via.length; i++) {
            const list = executions.find((x) => x.id === via[i - 1])!.targets;
            expect(list.some((entry) => "include" in entry && entry.include === via[i])).toBe(true);
          }
          expect(executions.find((x) => x.id === via.at(-1))!.targets.some((entry) => "target" in entry && entry.target === t.id)).toBe(true);
        }
        checked++;
      };
      for (const method of [...methods, "/p.A/Three", "/q.C/One"]) {
        check({ type: "request", method }, plan.forMethod(method).request);
        check({ type: "response", method }, plan.forMethod(method).response);
      }
      for (const event of [...events, "user.machine.added", "session.added"]) check({ type: "event", event }, plan.forEvent(event));
      for (const name of [...functions, "f3"]) check({ type: "function", name }, plan.forFunction(name));
    }
    expect(checked).toBe(300 * (6 * 2 + 7 + 3));
  });
});

// --- the RPC -------------------------------------------------------------------------------------------------

const addHumanUser = "/zitadel.user.v2.UserService/AddHumanUser";
const userService = "zitadel.user.v2.UserService";

let h: SampleHarness;
beforeAll(async () => {
  h = await startSampleHarness();
});
afterAll(async () => {
  await h.close();
});
beforeEach(async () => {
  await clearStore(h.server.store);
  await clearStore(h.server.actionStore.forInstance("other"));
  h.targets.calls.length = 0;
});

const request = (selector: { case: "method" | "service"; value: string } | { case: "all"; value: true }) => ({
  conditionType: { case: "request" as const, value: { condition: selector } },
});
const event = (selector: { case: "event" | "group"; value: string } | { case: "all"; value: true }) => ({
  conditionType: { case: "event" as const, value: { condition: selector } },
});

async function webhook(name: string, path: string, interruptOnError = true): Promise<string> {
  const { id } = await h.actions().createTarget({
    name,
    targetType: { case: "restWebhook", value: { interruptOnError } },
    endpoint: h.targets.endpoint(path),
    timeout: { seconds: 5n },
  });
  return id;
}

describe.each(["v2", "v2beta"] as ApiVersion[])("ExplainExecution %s over Connect", (version) => {
  it("explains method over service over all, and the interceptor calls exactly the targets it names", async () => {
    const client = h.actions(version);
    const [all, service, method] = [await webhook("all", "/all"), await webhook("service", "/service"), await webhook("method", "/method")];
    await client.setExecution({ condition: request({ case: "all", value: true }), targets: [all] });
    await client.setExecution({ condition: request({ case: "service", value: userService }), targets: [service] });
    await client.setExecution({ condition: request({ case: "method", value: addHumanUser }), targets: [method] });

    const explained = await client.explainExecution({ condition: request({ case: "method", value: addHumanUser }) });
    expect(explained.$typeName).toBe(`zitadel.action.${version}.ExplainExecutionResponse`);
    expect(explained.execution?.condition?.conditionType).toMatchObject({ case: "request", value: { condition: { case: "method", value: addHumanUser } } });
    expect(explained.execution?.targets).toEqual([method]);
    expect(explained.targets).toEqual([
      expect.objectContaining({
        targetId: method,
        targetName: "method",
        via: [`request${addHumanUser}`],
        targetType: "rest_webhook",
        endpoint: h.targets.endpoint("/method"),
        interruptOnError: true,
        timeout: expect.objectContaining({ seconds: 5n, nanos: 0 }),
      }),
    ]);
    expect(explained.levels.map((l) => [l.executionId, l.exists, l.matched])).toEqual([
      [`request${addHumanUser}`, true, true],
      [`request/${userService}`, true, false],
      ["request", true, false],
    ]);
    expect(explained.levels[1]!.condition?.conditionType).toMatchObject({ case: "request", value: { condition: { case: "service", value: userService } } });

    await h.users().addHumanUser(addUser());
    expect(h.targets.calls.map((c) => c.path)).toEqual(["/method"]);

    // Without the method's execution, the service's runs; without that, all's.
    await client.setExecution({ condition: request({ case: "method", value: addHumanUser }), targets: [] });
    const byService = await client.explainExecution({ condition: request({ case: "method", value: addHumanUser }) });
    expect(byService.levels.map((l) => [l.exists, l.matched])).toEqual([[false, false], [true, true], [true, false]]);
    expect(byService.targets.map((t) => t.targetId)).toEqual([service]);
    await client.setExecution({ condition: request({ case: "service", value: userService }), targets: [] });
    const byAll = await client.explainExecution({ condition: request({ case: "method", value: addHumanUser }) });
    expect(byAll.targets.map((t) => t.targetId)).toEqual([all]);
    h.targets.calls.length = 0;
    await h.users().addHumanUser(addUser());
    expect(h.targets.calls.map((c) => c.path)).toEqual(["/all"]);
  });

  it("expands includes depth first with their via chains, in the order the interceptor calls them", async () => {
    const client = h.actions(version);
    const [t1, t2, t3, t4] = [await webhook("t1", "/1"), await webhook("t2", "/2"), await webhook("t3", "/3"), await webhook("t4", "/4")];
    await client.setExecution({ condition: request({ case: "all", value: true }), targets: [t3] });
    await client.setExecution({
      condition: request({ case: "service", value: userService }),
      targets: [t2],
      includes: [request({ case: "all", value: true })],
    });
    await client.setExecution({
      condition: request({ case: "method", value: addHumanUser }),
      targets: [t1, t4],
      includes: [request({ case: "service", value: userService })],
    });
    const explained = await client.explainExecution({ condition: request({ case: "method", value: addHumanUser }) });
    expect(explained.targets.map((t) => [t.targetName, t.via])).toEqual([
      ["t1", [`request${addHumanUser}`]],
      ["t4", [`request${addHumanUser}`]],
      ["t2", [`request${addHumanUser}`, `request/${userService}`]],
      ["t3", [`request${addHumanUser}`, `request/${userService}`, "request"]],
    ]);
    expect(explained.execution?.includes).toHaveLength(1);
    await h.users().addHumanUser(addUser());
    expect(h.targets.calls.map((c) => c.path)).toEqual(["/1", "/4", "/2", "/3"]);
  });

  it("explains events with their group levels, and functions", async () => {
    const client = h.actions(version);
    const [group, all, fn] = [await webhook("group", "/group"), await webhook("all", "/all"), await webhook("fn", "/fn")];
    await client.setExecution({ condition: event({ case: "group", value: "user.human" }), targets: [group] });
    await client.setExecution({ condition: event({ case: "all", value: true }), targets: [all] });
    await client.setExecution({ condition: { conditionType: { case: "function", value: { name: "preuserinfo" } } }, targets: [fn] });
    const explained = await client.explainExecution({ condition: event({ case: "event", value: "user.human.added" }) });
    expect(explained.levels.map((l) => [l.executionId, l.exists, l.matched])).toEqual([
      ["event/user.human.added", false, false],
      ["event/user.human.*", true, true],
      ["event/user.*", false, false],
      ["event", true, false],
    ]);
    expect(explained.levels[1]!.condition?.conditionType).toMatchObject({ case: "event", value: { condition: { case: "group", value: "user.human" } } });
    expect(explained.targets.map((t) => t.targetId)).toEqual([group]);
    const removed = await client.explainExecution({ condition: event({ case: "event", value: "user.removed" }) });
    expect(removed.targets.map((t) => [t.targetId, t.via])).toEqual([[all, ["event"]]]);
    const fnExplained = await client.explainExecution({ condition: { conditionType: { case: "function", value: { name: "preuserinfo" } } } });
    expect(fnExplained.levels.map((l) => [l.executionId, l.exists, l.matched])).toEqual([["function/preuserinfo", true, true]]);
    expect(fnExplained.targets.map((t) => t.targetId)).toEqual([fn]);
  });

  it("without an execution: no execution, no target, every level exists=false", async () => {
    const explained = await h.actions(version).explainExecution({ condition: request({ case: "method", value: addHumanUser }) });
    expect(explained.execution).toBeUndefined();
    expect(explained.targets).toEqual([]);
    expect(explained.levels.map((l) => [l.executionId, l.exists, l.matched])).toEqual([
      [`request${addHumanUser}`, false, false],
      [`request/${userService}`, false, false],
      ["request", false, false],
    ]);
  });

  it("sees the caller's instance only", async () => {
    const other = h.server.actionStore.forInstance("other");
    const t = await other.createTarget({ name: "other", type: "webhook", endpoint: h.targets.endpoint("/other"), timeoutMs: 1000 });
    await other.setExecution({ type: "request", all: true }, [{ target: t.id }]);
    const explained = await h.actions(version).explainExecution({ condition: request({ case: "method", value: addHumanUser }) });
    expect(explained.execution).toBeUndefined();
    expect(explained.levels.every((l) => !l.exists)).toBe(true);
  });

  it("refuses a missing, malformed, unknown or protected condition", async () => {
    const client = h.actions(version);
    const errorOf = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => ConnectError.from(e));
    const missing = await errorOf(client.explainExecution({}));
    expect([missing?.code, missing?.rawMessage]).toEqual([Code.InvalidArgument, "condition is required"]);
    const empty = await errorOf(client.explainExecution({ condition: {} }));
    expect(empty?.code).toBe(Code.InvalidArgument);
    expect(empty?.rawMessage).toMatch(/^condition/);
    expect((await errorOf(client.explainExecution({ condition: request({ case: "method", value: "/no.Such/Method" }) })))?.code).toBe(Code.NotFound);
    // An event type SetExecution does not know may still be published: it meets the executions of all events.
    await client.setExecution({ condition: event({ case: "all", value: true }), targets: [await webhook("all events", "/all-events")] });
    const unknownEvent = await client.explainExecution({ condition: event({ case: "event", value: "no.such.event" }) });
    expect(unknownEvent.levels.map((l) => [l.executionId, l.exists, l.matched])).toEqual([
      ["event/no.such.event", false, false],
      ["event/no.such.*", false, false],
      ["event/no.*", false, false],
      ["event", true, true],
    ]);
    await client.setExecution({ condition: event({ case: "all", value: true }), targets: [] });
    const protectedMethod = await errorOf(
      client.explainExecution({ condition: request({ case: "method", value: "/zitadel.action.v2.ActionService/ListTargets" }) }),
    );
    expect(protectedMethod?.code).toBe(Code.InvalidArgument);
  });
});

describe("ExplainExecution over REST", () => {
  it("answers POST /v2/actions/executions/explain and /v2beta/... with the JSON the console reads", async () => {
    const t = await webhook("rest", "/rest");
    await h.actions().setExecution({ condition: request({ case: "service", value: userService }), targets: [t] });
    for (const prefix of ["/v2", "/v2beta"]) {
      const res = await h.rest("POST", `${prefix}/actions/executions/explain`, { condition: { request: { method: addHumanUser } } }, h.auth);
      expect(res.status, res.text).toBe(200);
      expect(res.json.targets).toEqual([
        { targetId: t, targetName: "rest", via: [`request/${userService}`], targetType: "rest_webhook", endpoint: h.targets.endpoint("/rest"), interruptOnError: true, timeout: "5s" },
      ]);
      expect(res.json.levels).toEqual([
        { executionId: `request${addHumanUser}`, condition: { request: { method: addHumanUser } } },
        { executionId: `request/${userService}`, condition: { request: { service: userService } }, exists: true, matched: true },
        { executionId: "request", condition: { request: { all: true } } },
      ]);
      expect(res.json.execution).toMatchObject({ condition: { request: { service: userService } }, targets: [t] });
    }
    const none = await h.rest("POST", "/v2/actions/executions/explain", { condition: { function: { name: "preuserinfo" } } }, h.auth);
    expect(none.status).toBe(200);
    expect(none.json).toEqual({ levels: [{ executionId: "function/preuserinfo", condition: { function: { name: "preuserinfo" } } }] });
    const missing = await h.rest("POST", "/v2/actions/executions/explain", {}, h.auth);
    expect(missing.status).toBe(400);
    expect(missing.json.message).toBe("condition is required");
    expect((await h.rest("POST", "/v2/actions/executions/explain", { condition: { request: { all: true } } })).status).toBe(401);
  });
});
