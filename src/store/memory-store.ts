import { Code, ConnectError } from "@connectrpc/connect";
import type { ActionSnapshot, ActionStore } from "./action-store.js";
import { type Condition, executionId, validateCondition } from "../condition.js";
import { checkIncludeGraph, type Execution, type ExecutionTarget, validateExecutionTargets } from "../execution.js";
import { newId } from "../id.js";
import { applyTargetPatch, generateSigningKey, type Target, type TargetInput, type TargetPatch, validateTargetInput } from "../target.js";

/**
 * MemoryStoreOptions configures createMemoryStore.
 */
export interface MemoryStoreOptions {
  /** Clock, default `() => new Date()`. */
  readonly now?: () => Date;
}

/**
 * createMemoryStore returns an ActionStore that keeps everything in this
 * process. It is the default store: fast, consistent, and gone on restart.
 * Returned objects are frozen; every write is atomic and synchronous under
 * the hood, so watchers hear of it before the write's promise resolves.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): ActionStore {
  const now = options.now ?? (() => new Date());
  const targets = new Map<string, Target>();
  const targetIdsByName = new Map<string, string>();
  const executions = new Map<string, Execution>();
  const listeners = new Set<() => void>();
  let closed = false;

  const changed = () => {
    for (const listener of listeners) {
      try {
        listener();
      } catch {
        // A watcher's failure is its own; the write has happened.
      }
    }
  };
  const open = () => {
    if (closed) throw new ConnectError("store is closed", Code.Unavailable);
  };
  // Reverse index of includes: execution ID -> IDs of the executions including it.
  const includers = new Map<string, Set<string>>();
  const includersOf = (id: string): Iterable<string> => includers.get(id) ?? [];
  const putExecution = (id: string, next: Execution | undefined) => {
    for (const t of executions.get(id)?.targets ?? []) {
      if ("include" in t) includers.get(t.include)?.delete(id);
    }
    if (next === undefined) {
      executions.delete(id);
      return;
    }
    executions.set(id, next);
    for (const t of next.targets) {
      if (!("include" in t)) continue;
      let set = includers.get(t.include);
      if (set === undefined) includers.set(t.include, (set = new Set()));
      set.add(id);
    }
  };

  /**
   * dropExecution removes an execution and the includes of it from other
   * executions; one left with no entries is dropped the same way.
   */
  const dropExecution = (id: string, date: Date) => {
    const pending = [id];
    for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
      const parents = [...includersOf(next)];
      putExecution(next, undefined);
      for (const parentId of parents) {
        const parent = executions.get(parentId);
        if (parent === undefined) continue;
        const gone = next;
        const rest = parent.targets.filter((t) => !("include" in t && t.include === gone));
        if (rest.length === 0) pending.push(parentId);
        else putExecution(parentId, freezeExecution({ ...parent, targets: rest, changeDate: date }));
      }
    }
  };

  return {
    async createTarget(input: TargetInput) {
      open();
      const fields = validateTargetInput(input);
      if (targetIdsByName.has(fields.name)) {
        throw new ConnectError(`a target named "${fields.name}" already exists`, Code.AlreadyExists);
      }
      const date = now();
      const target: Target = Object.freeze({
        id: newId(),
        ...fields,
        signingKey: generateSigningKey(),
        creationDate: date,
        changeDate: date,
      });
      targets.set(target.id, target);
      targetIdsByName.set(target.name, target.id);
      changed();
      return target;
    },

    async updateTarget(id: string, patch: TargetPatch) {
      open();
      const current = targets.get(id);
      if (current === undefined) {
        throw new ConnectError(`target "${id}" not found`, Code.NotFound);
      }
      const next = Object.freeze(applyTargetPatch(current, patch, now()));
      const owner = targetIdsByName.get(next.name);
      if (owner !== undefined && owner !== id) {
        throw new ConnectError(`a target named "${next.name}" already exists`, Code.AlreadyExists);
      }
      targetIdsByName.delete(current.name);
      targetIdsByName.set(next.name, id);
      targets.set(id, next);
      changed();
      return next;
    },

    async deleteTarget(id: string) {
      open();
      const current = targets.get(id);
      if (current === undefined) return false;
      targets.delete(id);
      targetIdsByName.delete(current.name);
      const date = now();
      for (const e of [...executions.values()]) {
        if (!e.targets.some((t) => "target" in t && t.target === id)) continue;
        const rest = e.targets.filter((t) => !("target" in t && t.target === id));
        if (rest.length === 0) dropExecution(e.id, date);
        else putExecution(e.id, freezeExecution({ ...e, targets: rest, changeDate: date }));
      }
      changed();
      return true;
    },

    async getTarget(id: string) {
      open();
      return targets.get(id);
    },

    async listTargets() {
      open();
      return [...targets.values()];
    },

    async setExecution(condition: Condition, list: readonly ExecutionTarget[]) {
      open();
      const normalized = validateCondition(condition);
      const id = executionId(normalized);
      const entries = validateExecutionTargets(id, list);
      const current = executions.get(id);
      if (entries.length === 0) {
        if (current !== undefined) {
          dropExecution(id, now());
          changed();
        }
        return undefined;
      }
      for (const entry of entries) {
        if ("target" in entry && !targets.has(entry.target)) {
          throw new ConnectError(`target "${entry.target}" not found`, Code.NotFound);
        }
      }
      checkIncludeGraph(id, entries, (x) => executions.get(x)?.targets, includersOf);
      const date = now();
      const execution = freezeExecution({
        id,
        condition: normalized,
        targets: entries,
        creationDate: current?.creationDate ?? date,
        changeDate: date,
      });
      putExecution(id, execution);
      changed();
      return execution;
    },

    async getExecution(id: string) {
      open();
      return executions.get(id);
    },

    async listExecutions() {
      open();
      return [...executions.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },

    async snapshot(): Promise<ActionSnapshot> {
      open();
      return { targets: [...targets.values()], executions: [...executions.values()] };
    },

    watch(listener: () => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },

    async close() {
      closed = true;
      listeners.clear();
    },
  };
}

function freezeExecution(e: Execution): Execution {
  return Object.freeze({
    ...e,
    condition: Object.freeze({ ...e.condition }),
    targets: Object.freeze(e.targets.map((t) => Object.freeze({ ...t }))),
  });
}
