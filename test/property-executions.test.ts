// Issue 14: a seeded property-based test. Thousands of random sequences of writes (targets created and deleted,
// executions set, replaced and removed, with includes) run against a store and against a reference model written
// from the specification (README "Best match" and "Includes", ActionService SetExecution and DeleteTarget). After
// every write both must agree on the outcome (success, or an error code the specification allows), on every stored
// execution, and on what runs: the best match of every method, event and function, includes resolved.
// On the memory store and on PostgreSQL (fewer sequences: each write is a transaction). Replay with PROPERTY_SEED.
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import type { Condition } from "../src/condition.js";
import type { ExecutionTarget } from "../src/execution.js";
import { silentLogger } from "../src/logger.js";
import { compileExecutionPlan } from "../src/plan/execution-plan.js";
import { createPostgresStore } from "../src/postgres/store.js";
import type { ActionStore, InstanceStore } from "../src/store/action-store.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { createPrng, type Prng } from "./helpers/prng.js";
import { useTestDatabase } from "./helpers/postgres.js";

const SEED = Number(process.env.PROPERTY_SEED ?? 0x0e_14_0010);

// --- the universe the random writes draw from: small, so that they collide -----------------------------------

const services = ["pkg.A", "pkg.B"];
const methods = services.flatMap((s) => ["One", "Two"].map((m) => `/${s}/${m}`));
const probeMethods = [...methods, "/pkg.A/Three", "/pkg.C/One"];
const groups = ["user", "user.human", "org"];
const eventTypes = ["user.human.added", "user.human.changed", "user.removed", "org.added"];
const probeEvents = [...eventTypes, "user.machine.added", "session.added"];
const functions = ["preuserinfo", "preaccesstoken"];
const probeFunctions = [...functions, "presamlresponse"];

/** conditions are every condition the writes may use, and their IDs as the specification writes them. */
const conditions: { readonly condition: Condition; readonly id: string }[] = [
  ...(["request", "response"] as const).flatMap((type) => [
    { condition: { type, all: true } as Condition, id: type },
    ...services.map((service) => ({ condition: { type, service } as Condition, id: `${type}/${service}` })),
    ...methods.map((method) => ({ condition: { type, method } as Condition, id: `${type}${method}` })),
  ]),
  { condition: { type: "event", all: true }, id: "event" },
  ...groups.map((group) => ({ condition: { type: "event", group } as Condition, id: `event/${group}.*` })),
  ...eventTypes.map((event) => ({ condition: { type: "event", event } as Condition, id: `event/${event}` })),
  ...functions.map((name) => ({ condition: { type: "function", name } as Condition, id: `function/${name}` })),
];
const typeOf = (id: string) => id.split("/")[0]!;

// --- the reference model ---------------------------------------------------------------------------------------

/** Model is the state the specification describes: targets by name, executions by ID with their ordered entries. */
interface Model {
  targets: Map<string, string>; // name -> id
  executions: Map<string, ExecutionTarget[]>;
}

type Entry = { target: string } | { include: string };

/**
 * dropCascade removes an execution and, from every other execution, its includes; an execution left with no
 * entry is removed the same way (the specification: "DeleteTarget removes the target from every execution",
 * an execution with no entries does not exist, includes of a removed execution go with it).
 */
function dropCascade(model: Model, id: string): void {
  const pending = [id];
  for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
    if (!model.executions.delete(next)) continue;
    for (const [other, entries] of model.executions) {
      const rest = entries.filter((e) => !("include" in e && e.include === next));
      if (rest.length === entries.length) continue;
      if (rest.length === 0) pending.push(other);
      else model.executions.set(other, rest);
    }
  }
}

/** longestChain returns the longest include chain (edges) of the graph, or Infinity for a cycle. */
function longestChain(executions: Map<string, readonly Entry[]>): number {
  const memo = new Map<string, number>();
  const visiting = new Set<string>();
  const below = (id: string): number => {
    const known = memo.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return Infinity;
    visiting.add(id);
    let deepest = 0;
    for (const e of executions.get(id) ?? []) if ("include" in e) deepest = Math.max(deepest, 1 + below(e.include));
    visiting.delete(id);
    memo.set(id, deepest);
    return deepest;
  };
  let longest = 0;
  for (const id of executions.keys()) longest = Math.max(longest, below(id));
  return longest;
}

/**
 * modelSet applies SetExecution to the model and returns "ok", or the error codes the specification allows for
 * the request (any of them may be the answer when several faults come together); the model is unchanged then.
 */
function modelSet(model: Model, id: string, entries: readonly Entry[]): "ok" | Code[] {
  const allowed = new Set<Code>();
  const keys = entries.map((e) => ("target" in e ? `t:${e.target}` : `i:${e.include}`));
  if (new Set(keys).size !== keys.length) allowed.add(Code.InvalidArgument); // an entry repeats
  for (const e of entries) {
    if ("include" in e && (e.include === id || typeOf(e.include) !== typeOf(id))) allowed.add(Code.InvalidArgument);
  }
  if (entries.length === 0) {
    if (allowed.size > 0) return [...allowed];
    dropCascade(model, id); // removing an execution that does not exist changes nothing
    return "ok";
  }
  const targetIds = new Set(model.targets.values());
  if (entries.some((e) => "target" in e && !targetIds.has(e.target))) allowed.add(Code.NotFound);
  const missingInclude = entries.some((e) => "include" in e && e.include !== id && !model.executions.has(e.include));
  if (missingInclude) allowed.add(Code.NotFound);
  if (!missingInclude) {
    const next = new Map(model.executions);
    next.set(id, [...entries]);
    if (longestChain(next) > 3) allowed.add(Code.InvalidArgument); // a cycle, or more than 3 nested levels
  }
  if (allowed.size > 0) return [...allowed];
  model.executions.set(id, [...entries]);
  return "ok";
}

/** modelDeleteTarget applies DeleteTarget; resolves whether the target existed. */
function modelDeleteTarget(model: Model, name: string): boolean {
  const id = model.targets.get(name);
  if (id === undefined) return false;
  model.targets.delete(name);
  const emptied: string[] = [];
  for (const [execution, entries] of model.executions) {
    const rest = entries.filter((e) => !("target" in e && e.target === id));
    if (rest.length === entries.length) continue;
    if (rest.length === 0) emptied.push(execution);
    else model.executions.set(execution, rest);
  }
  for (const execution of emptied) dropCascade(model, execution);
  return true;
}

/** resolve returns the target IDs an execution runs: its entries in order, includes in place, each target once. */
function resolve(model: Model, id: string, out: string[] = [], path: string[] = [id]): string[] {
  for (const e of model.executions.get(id) ?? []) {
    if ("target" in e) {
      if (!out.includes(e.target)) out.push(e.target);
    } else if (!path.includes(e.include)) {
      resolve(model, e.include, out, [...path, e.include]);
    }
  }
  return out;
}

/** The best match of the specification: method, else service, else all; event, else longest group, else all. */
function bestForMethod(model: Model, type: string, method: string): string | undefined {
  const service = method.slice(1, method.lastIndexOf("/"));
  return [`${type}${method}`, `${type}/${service}`, type].find((id) => model.executions.has(id));
}
function bestForEvent(model: Model, eventType: string): string | undefined {
  if (model.executions.has(`event/${eventType}`)) return `event/${eventType}`;
  const parts = eventType.split(".");
  for (let n = parts.length - 1; n > 0; n--) {
    const id = `event/${parts.slice(0, n).join(".")}.*`;
    if (model.executions.has(id)) return id;
  }
  return model.executions.has("event") ? "event" : undefined;
}

// --- random writes -----------------------------------------------------------------------------------------------

type Write =
  | { kind: "create"; name: string }
  | { kind: "delete"; name: string }
  | { kind: "set"; id: string; condition: Condition; entries: { target?: string; include?: string }[] };

/** randomWrite draws a write; target names are resolved to IDs when it is applied. */
function randomWrite(prng: Prng, model: Model, step: number): Write {
  const names = ["t0", "t1", "t2", "t3", "t4"];
  // Every sequence starts with three targets; later, names are mostly those of existing targets.
  if (step < 3) return { kind: "create", name: names[step]! };
  const existing = [...model.targets.keys()];
  const someName = () => (existing.length > 0 && prng.chance(0.85) ? prng.pick(existing) : prng.pick(names));
  const roll = prng.next();
  if (roll < 0.1) return { kind: "create", name: prng.pick(names) };
  if (roll < 0.2) return { kind: "delete", name: someName() };
  // Mostly conditions of one type, so that includes connect.
  const type = prng.pick(["request", "event", "event", "function", "response"]);
  const ofType = conditions.filter((c) => typeOf(c.id) === type);
  const { condition, id } = prng.chance(0.95) ? prng.pick(ofType) : prng.pick(conditions);
  const entries: { target?: string; include?: string }[] = [];
  const size = prng.chance(0.1) ? 0 : prng.between(1, 4);
  for (let i = 0; i < size; i++) {
    if (prng.chance(0.55)) {
      entries.push({ target: someName() });
    } else {
      // Usually an existing execution of the type, sometimes any condition (missing, or of another type).
      const sameType = [...model.executions.keys()].filter((x) => typeOf(x) === type);
      entries.push({ include: sameType.length > 0 && prng.chance(0.8) ? prng.pick(sameType) : prng.pick(conditions).id });
    }
  }
  return { kind: "set", id, condition, entries };
}

/** codeOf resolves "ok" or the ConnectError's code. */
async function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; code: Code }> {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    if (!(e instanceof ConnectError)) throw e;
    return { ok: false, code: e.code };
  }
}

/**
 * runSequence applies `length` random writes to the store and the model and compares them after each one.
 * Throws with the seed, the sequence and the write when they disagree.
 */
async function runSequence(store: InstanceStore, prng: Prng, length: number, label: string): Promise<number> {
  const model: Model = { targets: new Map(), executions: new Map() };
  const names = new Map<string, string>(); // store target ID -> name, for messages
  let writes = 0;
  for (let step = 0; step < length; step++) {
    const write = randomWrite(prng, model, step);
    const where = `${label} step ${step}: ${JSON.stringify(write)}`;
    writes++;
    if (write.kind === "create") {
      const result = await outcome(store.createTarget({ name: write.name, type: "webhook", endpoint: `http://127.0.0.1:9/${write.name}`, timeoutMs: 1000 }));
      if (model.targets.has(write.name)) {
        expect(result.ok ? "ok" : result.code, where).toBe(Code.AlreadyExists);
      } else {
        expect(result.ok, where).toBe(true);
        if (result.ok) {
          model.targets.set(write.name, result.value.id);
          names.set(result.value.id, write.name);
        }
      }
    } else if (write.kind === "delete") {
      const id = model.targets.get(write.name) ?? `missing-${write.name}`;
      const deleted = await store.deleteTarget(id);
      expect(deleted, where).toBe(modelDeleteTarget(model, write.name));
    } else {
      // Target names become the IDs the store gave them (a name without a target: an ID that does not exist).
      const entries: Entry[] = write.entries.map((e) =>
        e.target !== undefined ? { target: model.targets.get(e.target) ?? `missing-${e.target}` } : { include: e.include! },
      );
      const expected = modelSet(model, write.id, entries);
      const result = await outcome(store.setExecution(write.condition, entries as ExecutionTarget[]));
      if (expected === "ok") {
        expect(result.ok ? "ok" : `error ${Code[result.code]}`, where).toBe("ok");
      } else {
        expect(result.ok ? "ok" : result.code, `${where}: allowed ${expected.map((c) => Code[c]).join(" or ")}`).toSatisfy(
          (code: unknown) => expected.includes(code as Code),
        );
      }
    }
    // The stored executions are the model's, entry for entry, and what runs is the model's: the best match and
    // resolved includes of every probe. Compared as JSON first (fast); expect() shows the difference.
    const plan = compileExecutionPlan(await store.snapshot());
    const runs = (m: { executionId: string; targets: readonly { id: string }[] } | undefined) =>
      m === undefined ? null : { id: m.executionId, targets: m.targets.map((t) => names.get(t.id) ?? t.id) };
    const modelRuns = (id: string | undefined) => (id === undefined ? null : { id, targets: resolve(model, id).map((t) => names.get(t) ?? t) });
    const actual = {
      executions: Object.fromEntries((await store.listExecutions()).map((e) => [e.id, e.targets.map((t) => ({ ...t }))])),
      methods: probeMethods.map((method) => {
        const m = plan.forMethod(method);
        return { method, request: runs(m.request), response: runs(m.response) };
      }),
      events: probeEvents.map((event) => ({ event, runs: runs(plan.forEvent(event)) })),
      functions: probeFunctions.map((name) => ({ name, runs: runs(plan.forFunction(name)) })),
    };
    const expected = {
      executions: Object.fromEntries([...model.executions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      methods: probeMethods.map((method) => ({
        method,
        request: modelRuns(bestForMethod(model, "request", method)),
        response: modelRuns(bestForMethod(model, "response", method)),
      })),
      events: probeEvents.map((event) => ({ event, runs: modelRuns(bestForEvent(model, event)) })),
      functions: probeFunctions.map((name) => ({ name, runs: modelRuns(model.executions.has(`function/${name}`) ? `function/${name}` : undefined) })),
    };
    if (JSON.stringify(actual) !== JSON.stringify(expected)) expect(actual, where).toEqual(expected);
  }
  return writes;
}

/** runAll runs `sequences` sequences of `length` writes, each in an instance of its own. */
async function runAll(store: ActionStore, prefix: string, sequences: number, length: number, seed: number): Promise<number> {
  let writes = 0;
  for (let i = 0; i < sequences; i++) {
    const prng = createPrng(seed + i);
    writes += await runSequence(store.forInstance(`${prefix}-${i}`), prng, length, `seed ${seed + i} (PROPERTY_SEED=${seed}, sequence ${i})`);
  }
  return writes;
}

describe("executions against the reference model", () => {
  it("agree on the memory store over 1500 random sequences of 16 writes", async () => {
    const store = createMemoryStore();
    const writes = await runAll(store, "m", 1500, 16, SEED);
    expect(writes).toBe(1500 * 16);
    await store.close();
  }, 300_000);

  describe("on PostgreSQL", () => {
    const db = useTestDatabase();
    it("agree over 80 random sequences of 16 writes", async () => {
      const store = await createPostgresStore({ connectionString: db.url, logger: silentLogger });
      try {
        const writes = await runAll(store, "p", 80, 16, SEED + 1_000_000);
        expect(writes).toBe(80 * 16);
      } finally {
        await store.close();
      }
    }, 300_000);
  });
});
