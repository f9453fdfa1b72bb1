import { describe, expect, it } from "vitest";
import type { Condition } from "../src/condition.js";
import { executionId } from "../src/condition.js";
import type { Execution, ExecutionTarget } from "../src/execution.js";
import { compileExecutionPlan } from "../src/plan/execution-plan.js";
import { createExecutionPlanner } from "../src/plan/execution-planner.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import type { Target } from "../src/target.js";

const date = new Date(0);
const target = (id: string): Target => ({
  id, name: id, type: "webhook", interruptOnError: false, endpoint: `http://t/${id}`, timeoutMs: 1000,
  instanceId: "", signingKey: "k".repeat(36), payloadType: "json", creationDate: date, changeDate: date,
});
const execution = (condition: Condition, targets: ExecutionTarget[]): Execution => ({
  id: executionId(condition), condition, targets, creationDate: date, changeDate: date,
});
const ids = (m: { targets: readonly Target[] } | undefined) => m?.targets.map((t) => t.id);

describe("compileExecutionPlan", () => {
  const targets = ["a", "b", "c", "d"].map(target);

  it("picks method over service over all, for request and response separately", () => {
    const plan = compileExecutionPlan({
      targets,
      executions: [
        execution({ type: "request", all: true }, [{ target: "a" }]),
        execution({ type: "request", service: "p.S" }, [{ target: "b" }]),
        execution({ type: "request", method: "/p.S/M" }, [{ target: "c" }]),
        execution({ type: "response", service: "p.S" }, [{ target: "d" }]),
      ],
    });
    expect(ids(plan.forMethod("/p.S/M").request)).toEqual(["c"]);
    expect(ids(plan.forMethod("/p.S/Other").request)).toEqual(["b"]);
    expect(ids(plan.forMethod("/q.T/M").request)).toEqual(["a"]);
    expect(ids(plan.forMethod("/p.S/M").response)).toEqual(["d"]);
    expect(plan.forMethod("/q.T/M").response).toBeUndefined();
    expect(plan.forMethod("/p.S/M").request?.executionId).toBe("request/p.S/M");
  });

  it("picks an event over the longest group over all", () => {
    const plan = compileExecutionPlan({
      targets,
      executions: [
        execution({ type: "event", all: true }, [{ target: "a" }]),
        execution({ type: "event", group: "user" }, [{ target: "b" }]),
        execution({ type: "event", group: "user.human" }, [{ target: "c" }]),
        execution({ type: "event", event: "user.human.added" }, [{ target: "d" }]),
      ],
    });
    expect(ids(plan.forEvent("user.human.added"))).toEqual(["d"]);
    expect(ids(plan.forEvent("user.human.changed"))).toEqual(["c"]);
    expect(ids(plan.forEvent("user.machine.added"))).toEqual(["b"]);
    expect(ids(plan.forEvent("org.added"))).toEqual(["a"]);
    // Groups are whole segments: "user" does not match "username.set".
    expect(ids(plan.forEvent("username.set"))).toEqual(["a"]);
  });

  it("finds functions by name only", () => {
    const plan = compileExecutionPlan({ targets, executions: [execution({ type: "function", name: "preuserinfo" }, [{ target: "a" }])] });
    expect(ids(plan.forFunction("preuserinfo"))).toEqual(["a"]);
    expect(plan.forFunction("preaccesstoken")).toBeUndefined();
  });

  it("expands includes in place, keeps each target's first position and skips missing ones", () => {
    const plan = compileExecutionPlan({
      targets,
      executions: [
        execution({ type: "request", all: true }, [{ target: "d" }, { target: "gone" }]),
        execution({ type: "request", service: "p.S" }, [{ target: "b" }, { include: "request" }]),
        execution({ type: "request", method: "/p.S/M" }, [{ target: "a" }, { include: "request/p.S" }, { target: "b" }, { target: "c" }]),
      ],
    });
    expect(ids(plan.forMethod("/p.S/M").request)).toEqual(["a", "b", "d", "c"]);
  });

  it("stops expanding at 3 levels and never loops, even on stored cycles", () => {
    const fn = (n: number): Condition => ({ type: "function", name: `f${n}` });
    const plan = compileExecutionPlan({
      targets: ["t0", "t1", "t2", "t3", "t4"].map(target),
      executions: [
        execution(fn(0), [{ target: "t0" }, { include: "function/f1" }]),
        execution(fn(1), [{ target: "t1" }, { include: "function/f2" }]),
        execution(fn(2), [{ target: "t2" }, { include: "function/f3" }]),
        execution(fn(3), [{ target: "t3" }, { include: "function/f4" }]),
        execution(fn(4), [{ target: "t4" }, { include: "function/f0" }]),
      ],
    });
    expect(ids(plan.forFunction("f0"))).toEqual(["t0", "t1", "t2", "t3"]);
    expect(ids(plan.forFunction("f4"))).toEqual(["t4", "t0", "t1", "t2"]);
  });
});

describe("createExecutionPlanner", () => {
  it("returns the same plan object until the store changes, and a fresh one right after", async () => {
    const store = createMemoryStore();
    const planner = createExecutionPlanner(store);
    const first = await planner.plan();
    expect(planner.plan()).toBe(first);
    const t = await store.createTarget({ name: "a", type: "webhook", endpoint: "http://x/", timeoutMs: 10 });
    await store.setExecution({ type: "request", all: true }, [{ target: t.id }]);
    const second = planner.plan();
    expect(second).toBeInstanceOf(Promise);
    expect(ids((await second).forMethod("/p.S/M").request)).toEqual([t.id]);
    planner.close();
  });

  it("never serves a plan older than a change announced before the call", async () => {
    const store = createMemoryStore();
    const planner = createExecutionPlanner(store);
    const t = await store.createTarget({ name: "a", type: "webhook", endpoint: "http://x/", timeoutMs: 10 });
    const inFlight = planner.plan(); // starts loading before the execution exists
    await store.setExecution({ type: "request", all: true }, [{ target: t.id }]);
    const after = await planner.plan();
    expect(ids(after.forMethod("/p.S/M").request)).toEqual([t.id]);
    await inFlight;
    planner.close();
  });

  it("keeps serving the last plan when the store becomes unreadable, and reports it", async () => {
    const store = createMemoryStore();
    const errors: unknown[] = [];
    const planner = createExecutionPlanner(store, { onStaleError: (e) => errors.push(e) });
    const first = await planner.plan();
    const t = await store.createTarget({ name: "a", type: "webhook", endpoint: "http://x/", timeoutMs: 10 });
    await store.close(); // snapshot() now fails
    void t;
    expect(await planner.plan()).toBe(first);
    expect(errors.length).toBe(1);
  });

  it("fails when the store is unreadable and there is no plan yet", async () => {
    const store = createMemoryStore();
    await store.close();
    const planner = createExecutionPlanner(store);
    await expect(planner.plan()).rejects.toThrow(/closed/);
  });
});
