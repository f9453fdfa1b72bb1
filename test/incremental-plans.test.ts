// The planner at scale: incremental updates give exactly the plan a full compilation gives
// (seeded random changes, memory and PostgreSQL, in the writing replica and in another one),
// plans of other instances stay the same objects, eviction under maxPlans and maxPlanBytes,
// changes without IDs and a lost LISTEN connection fall back to full compilations.
import { afterEach, describe, expect, it } from "vitest";
import type { Condition } from "../src/condition.js";
import { executionId } from "../src/condition.js";
import type { ExecutionTarget } from "../src/execution.js";
import { silentLogger } from "../src/logger.js";
import { compileExecutionPlan, type ExecutionPlan } from "../src/plan/execution-plan.js";
import { createExecutionPlanner, type ExecutionPlanner } from "../src/plan/execution-planner.js";
import { createPostgresStore, notifyPayloads, type PostgresStore } from "../src/postgres/store.js";
import type { ActionStore, InstanceStore, StoreChange } from "../src/store/action-store.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { createActions } from "../src/setup.js";
import type { TargetInput } from "../src/target.js";
import { newSchemaName, useTestDatabase } from "./helpers/postgres.js";
import { createPrng, type Prng } from "./helpers/prng.js";
import { waitFor } from "./helpers/wait.js";

const db = useTestDatabase();

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const hook = (name: string): TargetInput => ({ name, type: "webhook", endpoint: `http://127.0.0.1:9/${name}`, timeoutMs: 1000 });

const conditions: Condition[] = [
  { type: "request", all: true },
  { type: "request", service: "p.S" },
  { type: "request", method: "/p.S/A" },
  { type: "request", method: "/p.S/B" },
  { type: "request", method: "/q.T/A" },
  { type: "response", all: true },
  { type: "response", method: "/p.S/A" },
  { type: "event", all: true },
  { type: "event", group: "user" },
  { type: "event", group: "user.human" },
  { type: "event", event: "user.human.added" },
  { type: "function", name: "f1" },
  { type: "function", name: "f2" },
  { type: "function", name: "f3" },
  { type: "function", name: "f4" },
  { type: "function", name: "f5" },
];
const methods = ["/p.S/A", "/p.S/B", "/p.S/C", "/q.T/A", "/r.U/X"];
const events = ["user.human.added", "user.human.changed", "user.machine.added", "org.added"];

/**
 * sameAnswers expects `plan` to answer every question exactly as `expected`
 * does, for every execution and target ID in `ids`: the same executions, the
 * same targets in the same order, each target with the same fields.
 */
function sameAnswers(plan: ExecutionPlan, expected: ExecutionPlan, ids: { executions: Set<string>; targets: Set<string> }): boolean {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const id of ids.executions) if (!same(plan.byId(id), expected.byId(id))) return false;
  for (const id of ids.targets) if (!same(plan.target(id), expected.target(id))) return false;
  for (const m of methods) if (!same(plan.forMethod(m), expected.forMethod(m))) return false;
  for (const e of events) if (!same(plan.forEvent(e), expected.forEvent(e))) return false;
  for (const f of ["f1", "f2", "f3", "f4", "f5"]) if (!same(plan.forFunction(f), expected.forFunction(f))) return false;
  return true;
}

/**
 * randomChange makes one random write to `store`: create, update or delete a
 * target, set an execution (targets and includes of its type, in random
 * order), or remove one. Writes the store refuses (include cycles, chains too
 * deep) change nothing and are skipped. Every ID used goes into `ids`.
 */
async function randomChange(store: InstanceStore, prng: Prng, ids: { executions: Set<string>; targets: Set<string> }, n: number) {
  const targets = await store.listTargets();
  const executions = await store.listExecutions();
  const roll = prng.int(100);
  try {
    if (roll < 20 || targets.length < 3) {
      const t = await store.createTarget(hook(`t${n}`));
      ids.targets.add(t.id);
    } else if (roll < 30) {
      const t = prng.pick(targets);
      await store.updateTarget(t.id, prng.chance(0.5) ? { timeoutMs: prng.between(1, 9000) } : { name: `${t.name}-${n}` });
    } else if (roll < 40) {
      await store.deleteTarget(prng.pick(targets).id);
    } else if (roll < 88) {
      const condition = prng.pick(conditions);
      const id = executionId(condition);
      const entries: ExecutionTarget[] = [];
      for (const t of targets) if (prng.chance(3 / targets.length)) entries.push({ target: t.id });
      const sameType = executions.filter((e) => e.condition.type === condition.type && e.id !== id);
      for (const e of sameType) if (prng.chance(0.4)) entries.push({ include: e.id });
      if (entries.length === 0) entries.push({ target: prng.pick(targets).id });
      for (let i = entries.length - 1; i > 0; i--) {
        const j = prng.int(i + 1);
        [entries[i], entries[j]] = [entries[j]!, entries[i]!];
      }
      ids.executions.add(id);
      await store.setExecution(condition, entries);
    } else if (executions.length > 0) {
      await store.setExecution(prng.pick(executions).condition, []);
    }
  } catch (error) {
    if (!(error instanceof Error && /cycle|levels deep/.test(error.message))) throw error;
  }
}

describe("incremental plan updates", () => {
  it("give exactly the plan a full compilation gives, after every one of 300 random changes (memory)", async () => {
    const store = createMemoryStore();
    const planner = createExecutionPlanner(store);
    cleanups.push(() => planner.close());
    const prng = createPrng(20261124);
    const ids = { executions: new Set<string>(), targets: new Set<string>() };
    await planner.plan();
    for (let n = 0; n < 300; n++) {
      await randomChange(store, prng, ids, n);
      const plan = await planner.plan();
      expect(sameAnswers(plan, compileExecutionPlan(await store.snapshot()), ids), `after change ${n}`).toBe(true);
    }
    // Every change was applied by itself: one compilation, the first.
    expect(planner.stats().compiles).toBe(1);
    expect(planner.stats().updates).toBeGreaterThan(250);
    // Includes were exercised: some plan resolves an execution through another.
    const plan = await planner.plan();
    expect([...ids.executions].some((id) => (plan.byId(id)?.targets.length ?? 0) > 3)).toBe(true);
  });

  it("give exactly the plan a full compilation gives, after batches of random changes, in the writing replica and in another (PostgreSQL)", async () => {
    const schema = newSchemaName("inc");
    const a = await createPostgresStore({ connectionString: db.url, schema, logger: silentLogger });
    const b = await createPostgresStore({ connectionString: db.url, schema, logger: silentLogger });
    const plannerA = createExecutionPlanner(a);
    const plannerB = createExecutionPlanner(b);
    cleanups.push(async () => {
      plannerA.close();
      plannerB.close();
      await a.close();
      await b.close();
    });
    const instance = a.forInstance("tenant");
    const prng = createPrng(424242);
    const ids = { executions: new Set<string>(), targets: new Set<string>() };
    await plannerA.plan("tenant");
    await plannerB.plan("tenant");
    for (let batch = 0; batch < 25; batch++) {
      // Several changes between two plans: B may hear of them one by one or together.
      const size = prng.between(1, 6);
      for (let i = 0; i < size; i++) await randomChange(instance, prng, ids, batch * 10 + i);
      const expected = compileExecutionPlan(await instance.snapshot());
      expect(sameAnswers(await plannerA.plan("tenant"), expected, ids), `A after batch ${batch}`).toBe(true);
      await waitFor(async () => sameAnswers(await plannerB.plan("tenant"), expected, ids), 10_000, `B after batch ${batch}`);
    }
    expect(plannerA.stats().compiles).toBe(1);
    expect(plannerB.stats().compiles).toBe(1);
    expect(plannerB.stats().updates).toBeGreaterThan(10);
  }, 120_000);

  it("resolve again only the affected executions: the others keep their match objects", async () => {
    const store = createMemoryStore();
    const planner = createExecutionPlanner(store);
    cleanups.push(() => planner.close());
    const [t1, t2, t3] = [await store.createTarget(hook("t1")), await store.createTarget(hook("t2")), await store.createTarget(hook("t3"))];
    await store.setExecution({ type: "request", service: "p.S" }, [{ target: t1.id }]);
    await store.setExecution({ type: "request", method: "/p.S/A" }, [{ target: t2.id }, { include: "request/p.S" }]);
    await store.setExecution({ type: "request", method: "/p.S/B" }, [{ target: t3.id }]);
    const before = await planner.plan();
    const service = before.byId("request/p.S");
    const a = before.byId("request/p.S/A");
    const b = before.byId("request/p.S/B");

    await store.updateTarget(t1.id, { timeoutMs: 2000 });
    const after = await planner.plan();
    expect(after).not.toBe(before);
    // t1 is named by the service execution, which /p.S/A includes: both resolved again.
    expect(after.byId("request/p.S")).not.toBe(service);
    expect(after.byId("request/p.S/A")).not.toBe(a);
    expect(after.byId("request/p.S/A")?.targets.map((t) => [t.id, t.timeoutMs])).toEqual([
      [t2.id, 1000],
      [t1.id, 2000],
    ]);
    // /p.S/B has nothing to do with t1: the very same object.
    expect(after.byId("request/p.S/B")).toBe(b);
    expect(planner.stats()).toMatchObject({ compiles: 1, updates: 1 });
  });

  it("leave the plans of other instances untouched: the same objects, without a promise", async () => {
    const store = createMemoryStore();
    const planner = createExecutionPlanner(store);
    cleanups.push(() => planner.close());
    const plans = new Map<string, ExecutionPlan>();
    for (const instance of ["a", "b", "c"]) {
      const view = store.forInstance(instance);
      const t = await view.createTarget(hook("t"));
      await view.setExecution({ type: "request", all: true }, [{ target: t.id }]);
      plans.set(instance, await planner.plan(instance));
    }
    const matchA = plans.get("a")!.byId("request");
    const t2 = await store.forInstance("b").createTarget(hook("t2"));
    await store.forInstance("b").setExecution({ type: "request", service: "p.S" }, [{ target: t2.id }]);
    expect(planner.plan("a")).toBe(plans.get("a"));
    expect(planner.plan("c")).toBe(plans.get("c"));
    expect((planner.plan("a") as ExecutionPlan).byId("request")).toBe(matchA);
    const b = planner.plan("b");
    expect(b).toBeInstanceOf(Promise);
    expect((await b).forMethod("/p.S/A").request?.targets.map((t) => t.id)).toEqual([t2.id]);
    expect(planner.stats()).toMatchObject({ compiles: 3, updates: 1 });
  });
});

/**
 * watchable wraps a store so that a test can announce changes of its own to
 * the planner; with `forward` false, the store's own changes are not passed on.
 */
function watchable(store: ActionStore, forward = true): { store: ActionStore; announce: (change: StoreChange) => void } {
  const listeners: ((change: StoreChange) => void)[] = [];
  return {
    store: {
      ...store,
      watch(listener) {
        listeners.push(listener);
        return forward ? store.watch(listener) : () => {};
      },
    },
    announce: (change) => {
      for (const l of listeners) l(change);
    },
  };
}

describe("changes that do not say what they changed", () => {
  it("make the planner compile that instance afresh, and only that one", async () => {
    const memory = createMemoryStore();
    const { store, announce } = watchable(memory, false);
    const planner = createExecutionPlanner(store);
    cleanups.push(() => planner.close());
    const a = await planner.plan("a");
    const b = await planner.plan("b");
    // A write the planner does not hear of, then a change that names the instance only.
    const t = await memory.forInstance("a").createTarget(hook("quiet"));
    expect(planner.plan("a")).toBe(a);
    announce({ instanceId: "a" });
    expect(planner.plan("b")).toBe(b);
    const next = await planner.plan("a");
    expect(next).not.toBe(a);
    expect(next.target(t.id)).toEqual(t);
    expect(planner.stats()).toMatchObject({ compiles: 3, updates: 0 });
  });

  it("leave the plan as it is when they name no IDs at all, and later changes still apply", async () => {
    const memory = createMemoryStore();
    const { store, announce } = watchable(memory);
    const planner = createExecutionPlanner(store);
    cleanups.push(() => planner.close());
    const a = await planner.plan("a");
    announce({ instanceId: "a", targetIds: [], executionIds: [] });
    expect(await planner.plan("a")).toBe(a);
    expect(planner.plan("a")).toBe(a);
    const t = await memory.forInstance("a").createTarget(hook("later"));
    expect((await planner.plan("a")).target(t.id)).toEqual(t);
    expect(planner.stats()).toMatchObject({ compiles: 1, updates: 1 });
  });

  it("arrive from another replica when a PostgreSQL notification carries no IDs, and compile that instance afresh", async () => {
    const schema = newSchemaName("noid");
    const store = await createPostgresStore({ connectionString: db.url, schema, logger: silentLogger });
    const planner = createExecutionPlanner(store);
    cleanups.push(async () => {
      planner.close();
      await store.close();
    });
    const t = await store.forInstance("a").createTarget(hook("t"));
    const a = await planner.plan("a");
    const b = await planner.plan("b");
    const compiles = planner.stats().compiles;
    // Another replica's execution, written and announced without IDs (as a change too large to name).
    await db.query(
      `INSERT INTO ${schema}.executions (instance_id, id, condition, targets, creation_date, change_date)
       VALUES ('a', 'request', '{"type":"request","all":true}', $1, now(), now())`,
      [JSON.stringify([{ target: t.id }])],
    );
    await db.query("SELECT pg_notify($1, $2)", [store.channel, JSON.stringify({ source: "other", instanceId: "a" })]);
    await waitFor(() => planner.plan("a") !== a, 10_000, "the plan of a to go stale");
    const next = await planner.plan("a");
    expect(next.forMethod("/p.S/A").request?.targets.map((x) => x.id)).toEqual([t.id]);
    expect(planner.plan("b")).toBe(b);
    expect(planner.stats().compiles).toBe(compiles + 1);
    expect(planner.stats().updates).toBe(0);
  });

  it("lets a change too large for one notification reach another replica in parts, applied incrementally", async () => {
    const schema = newSchemaName("parts");
    const a = await createPostgresStore({ connectionString: db.url, schema, logger: silentLogger });
    const b = await createPostgresStore({ connectionString: db.url, schema, logger: silentLogger });
    const planner = createExecutionPlanner(b);
    cleanups.push(async () => {
      planner.close();
      await a.close();
      await b.close();
    });
    const t = await a.createTarget(hook("everywhere"));
    const keep = await a.createTarget(hook("keep"));
    // 400 executions name t; deleting t changes them all: about 20 kB of IDs.
    for (let i = 0; i < 400; i++) {
      await a.setExecution({ type: "request", method: `/p.S/Method${String(i).padStart(4, "0")}` }, [
        { target: t.id },
        ...(i % 2 === 0 ? [{ target: keep.id }] : []),
      ]);
    }
    await waitFor(async () => (await planner.plan()).byId("request/p.S/Method0399") !== undefined, 10_000, "B to see the executions");
    const compiles = planner.stats().compiles;
    await a.deleteTarget(t.id);
    const expected = compileExecutionPlan(await a.snapshot());
    const ids = { executions: new Set(Array.from({ length: 400 }, (_, i) => `request/p.S/Method${String(i).padStart(4, "0")}`)), targets: new Set([t.id, keep.id]) };
    await waitFor(async () => sameAnswers(await planner.plan(), expected, ids), 10_000, "B to drop t");
    expect(planner.stats().compiles).toBe(compiles);
  }, 60_000);

  it("are split into parts of at most 7900 bytes naming every ID, or into one naming the instance only beyond 16 parts", () => {
    const ids = (n: number, prefix: string) => Array.from({ length: n }, (_, i) => `${prefix}/${"x".repeat(30)}/${i}`);
    const small = notifyPayloads("src", { instanceId: "i", targetIds: ["t"], executionIds: ["e"] });
    expect(small.map((p) => JSON.parse(p))).toEqual([{ source: "src", instanceId: "i", targetIds: ["t"], executionIds: ["e"] }]);
    const change = { instanceId: "i", targetIds: ids(300, "t"), executionIds: ids(500, "e") };
    const parts = notifyPayloads("src", change).map((p) => {
      expect(Buffer.byteLength(p)).toBeLessThanOrEqual(7900);
      return JSON.parse(p) as StoreChange & { source: string };
    });
    expect(parts.length).toBeGreaterThan(1);
    expect(parts.every((p) => p.source === "src" && p.instanceId === "i")).toBe(true);
    expect(parts.flatMap((p) => p.targetIds)).toEqual(change.targetIds);
    expect(parts.flatMap((p) => p.executionIds)).toEqual(change.executionIds);
    const huge = notifyPayloads("src", { instanceId: "i", targetIds: [], executionIds: ids(5000, "e") });
    expect(huge.map((p) => JSON.parse(p))).toEqual([{ source: "src", instanceId: "i" }]);
  });
});

describe("a lost LISTEN connection", () => {
  it("marks every plan stale as soon as it is lost, and again once it is back", async () => {
    const schema = newSchemaName("lost");
    const store: PostgresStore = await createPostgresStore({ connectionString: db.url, schema, logger: silentLogger });
    const planner = createExecutionPlanner(store);
    cleanups.push(async () => {
      planner.close();
      await store.close();
    });
    const heard: { change: StoreChange; listening: boolean }[] = [];
    store.watch((change) => heard.push({ change, listening: store.listenerPid() !== undefined }));
    const a = await planner.plan("a");
    const b = await planner.plan("b");
    const pid = store.listenerPid();
    await db.query("SELECT pg_terminate_backend($1)", [pid]);
    await waitFor(() => heard.length >= 2, 10_000, "the store to tell of the loss and of the reconnection");
    // First while not listening (the loss), then once listening again.
    expect(heard.slice(0, 2)).toEqual([
      { change: { instanceId: undefined }, listening: false },
      { change: { instanceId: undefined }, listening: true },
    ]);
    expect(planner.plan("a")).toBeInstanceOf(Promise);
    expect(planner.plan("b")).toBeInstanceOf(Promise);
    expect(await planner.plan("a")).not.toBe(a);
    expect(await planner.plan("b")).not.toBe(b);
  });

  it("marks plans stale at the loss even before the connection is back", async () => {
    const memory = createMemoryStore();
    const { store, announce } = watchable(memory, false);
    const planner = createExecutionPlanner(store);
    cleanups.push(() => planner.close());
    const a = await planner.plan("a");
    // What createPostgresStore announces when its LISTEN connection is lost; the
    // write after it is never announced (the connection is down).
    announce({ instanceId: undefined });
    const t = await memory.forInstance("a").createTarget(hook("while-down"));
    const next = await planner.plan("a");
    expect(next).not.toBe(a);
    expect(next.target(t.id)).toEqual(t);
  });
});

describe("eviction", () => {
  const seed = async (store: ActionStore, instances: string[]) => {
    for (const instance of instances) {
      const view = store.forInstance(instance);
      const t = await view.createTarget(hook("t"));
      await view.setExecution({ type: "request", all: true }, [{ target: t.id }]);
    }
  };

  it("keeps at most maxPlans plans, evicts the least recently used, and compiles an evicted one again on its next use", async () => {
    const store = createMemoryStore();
    await seed(store, ["a", "b", "c"]);
    const planner: ExecutionPlanner = createExecutionPlanner(store, { maxPlans: 2 });
    cleanups.push(() => planner.close());
    const a = await planner.plan("a");
    const b = await planner.plan("b");
    expect(planner.plan("a")).toBe(a); // a is now the most recently used
    const c = await planner.plan("c"); // evicts b
    expect(planner.stats()).toMatchObject({ plans: 2, compiles: 3, evictions: 1 });
    expect(planner.plan("a")).toBe(a);
    expect(planner.plan("c")).toBe(c);
    const again = planner.plan("b");
    expect(again).toBeInstanceOf(Promise);
    const b2 = await again;
    expect(b2).not.toBe(b);
    expect(JSON.stringify(b2.forMethod("/p.S/A"))).toBe(JSON.stringify(b.forMethod("/p.S/A")));
    // Changes of an evicted instance are not tracked; its next use reads it afresh.
    expect(planner.stats()).toMatchObject({ plans: 2, compiles: 4, evictions: 2 });
    const ta = await store.forInstance("a").createTarget(hook("late"));
    await store.forInstance("a").setExecution({ type: "request", service: "p.S" }, [{ target: ta.id }]);
    expect((await planner.plan("a")).forMethod("/p.S/A").request?.targets.map((t) => t.id)).toEqual([ta.id]);
  });

  it("keeps the estimated bytes within maxPlanBytes, but always the most recently used plan", async () => {
    const store = createMemoryStore();
    await seed(store, ["a", "b", "c", "d"]);
    const probe = createExecutionPlanner(store);
    await probe.plan("a");
    const one = probe.stats().estimatedBytes;
    probe.close();
    expect(one).toBeGreaterThan(0);

    const planner = createExecutionPlanner(store, { maxPlanBytes: one * 2 });
    cleanups.push(() => planner.close());
    for (const instance of ["a", "b", "c", "d"]) await planner.plan(instance);
    expect(planner.stats()).toMatchObject({ plans: 2, estimatedBytes: one * 2, evictions: 2 });
    const d = planner.plan("d");
    expect(d).not.toBeInstanceOf(Promise);
    expect(planner.plan("a")).toBeInstanceOf(Promise);

    const tiny = createExecutionPlanner(store, { maxPlanBytes: 1 });
    cleanups.push(() => tiny.close());
    const a = await tiny.plan("a");
    expect(tiny.plan("a")).toBe(a);
    await tiny.plan("b");
    expect(tiny.stats()).toMatchObject({ plans: 1, evictions: 1 });
  });

  it("applies createActions' plans option to the shared planner", async () => {
    const store = createMemoryStore();
    await seed(store, ["a", "b"]);
    const actions = createActions({ store, worker: false, adminTokens: "t", logger: silentLogger, plans: { maxPlans: 1 } });
    cleanups.push(() => actions.close());
    await actions.planner.plan("a");
    await actions.planner.plan("b");
    expect(actions.planner.stats()).toMatchObject({ plans: 1, evictions: 1 });
  });

  it("refuses bounds that cannot hold a plan", () => {
    const store = createMemoryStore();
    expect(() => createExecutionPlanner(store, { maxPlans: 0 })).toThrow(RangeError);
    expect(() => createExecutionPlanner(store, { maxPlanBytes: -1 })).toThrow(RangeError);
  });
});
