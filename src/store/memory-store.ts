import { Code, ConnectError } from "@connectrpc/connect";
import { type Condition, executionId, validateCondition } from "../condition.js";
import { checkIncludeGraph, type Execution, type ExecutionTarget, validateExecutionTargets } from "../execution.js";
import { newId } from "../id.js";
import { applyTargetPatch, generateSigningKey, type Target, type TargetInput, type TargetPatch, validateTargetInput } from "../target.js";
import {
  isKeyUsable,
  maxPublicKeysPerTarget,
  type PublicKeyInput,
  type TargetPublicKey,
  validatePublicKeyInput,
} from "../target-key.js";
import {
  type ActionSnapshot,
  type ActionStore,
  defaultInstanceId,
  type InstanceStore,
  type StoreChange,
  validateInstanceId,
} from "./action-store.js";
import { executionCapReached, type InstanceLimits, resolveInstanceLimits, targetCapReached } from "./instance-limits.js";

/**
 * MemoryStoreOptions configures createMemoryStore.
 */
export interface MemoryStoreOptions extends InstanceLimits {
  /** Clock, default `() => new Date()`. */
  readonly now?: () => Date;
}

/** The targets and executions of one instance. */
interface InstanceState {
  readonly targets: Map<string, Target>;
  readonly targetIdsByName: Map<string, string>;
  readonly executions: Map<string, Execution>;
  /** Reverse index of includes: execution ID -> IDs of the executions including it. */
  readonly includers: Map<string, Set<string>>;
  /** Public keys: target ID -> key ID -> key, in the order they were added. */
  readonly keys: Map<string, Map<string, StoredKey>>;
}

/** A stored public key: `activated` is the flag; an expired activated key is not active. */
type StoredKey = Omit<TargetPublicKey, "active"> & { readonly activated: boolean };

/**
 * createMemoryStore returns an ActionStore that keeps everything in this
 * process. It is the default store: fast, consistent, and gone on restart.
 * Returned objects are frozen; every write is atomic and synchronous under
 * the hood, so watchers hear of it before the write's promise resolves, and
 * the caps per instance (InstanceLimits) hold however many writes run at once.
 * Throws a ConnectError with Code.InvalidArgument for an invalid cap.
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): ActionStore {
  const now = options.now ?? (() => new Date());
  const { maxTargets, maxExecutions } = resolveInstanceLimits(options);
  const instances = new Map<string, InstanceState>();
  const listeners = new Set<(change: StoreChange) => void>();
  let closed = false;

  const changed = (change: StoreChange) => {
    for (const listener of listeners) {
      try {
        listener(change);
      } catch {
        // A watcher's failure is its own; the write has happened.
      }
    }
  };
  const open = () => {
    if (closed) throw new ConnectError("store is closed", Code.Unavailable);
  };

  const view = (instanceId: string): InstanceStore => {
    let state: InstanceState | undefined;
    // The state is made on the first write, so that reading unknown instances keeps nothing.
    const read = (): InstanceState | undefined => (state ??= instances.get(instanceId));
    const write = (): InstanceState => {
      state ??= instances.get(instanceId);
      if (state === undefined) {
        state = { targets: new Map(), targetIdsByName: new Map(), executions: new Map(), includers: new Map(), keys: new Map() };
        instances.set(instanceId, state);
      }
      return state;
    };
    const includersOf = (s: InstanceState, id: string): Iterable<string> => s.includers.get(id) ?? [];
    const putExecution = (s: InstanceState, id: string, next: Execution | undefined) => {
      for (const t of s.executions.get(id)?.targets ?? []) {
        if ("include" in t) s.includers.get(t.include)?.delete(id);
      }
      if (next === undefined) {
        s.executions.delete(id);
        return;
      }
      s.executions.set(id, next);
      for (const t of next.targets) {
        if (!("include" in t)) continue;
        let set = s.includers.get(t.include);
        if (set === undefined) s.includers.set(t.include, (set = new Set()));
        set.add(id);
      }
    };
    /**
     * dropExecution removes an execution and the includes of it from other
     * executions; one left with no entries is dropped the same way. Every
     * execution it changes or removes is added to `touched`.
     */
    const dropExecution = (s: InstanceState, id: string, date: Date, touched: Set<string>) => {
      const pending = [id];
      for (let next = pending.shift(); next !== undefined; next = pending.shift()) {
        const parents = [...includersOf(s, next)];
        putExecution(s, next, undefined);
        touched.add(next);
        for (const parentId of parents) {
          const parent = s.executions.get(parentId);
          if (parent === undefined) continue;
          const gone = next;
          const rest = parent.targets.filter((t) => !("include" in t && t.include === gone));
          touched.add(parentId);
          if (rest.length === 0) pending.push(parentId);
          else putExecution(s, parentId, freezeExecution({ ...parent, targets: rest, changeDate: date }));
        }
      }
    };
    const nameTaken = (name: string) => new ConnectError(`a target named "${name}" already exists`, Code.AlreadyExists);
    const targetNotFound = (id: string) => new ConnectError(`target "${String(id)}" not found`, Code.NotFound);
    /** keyOf returns the state, target and stored key, or throws Code.NotFound. */
    const keyOf = (targetId: string, keyId: string) => {
      const s = read();
      const target = s?.targets.get(targetId);
      if (s === undefined || target === undefined) throw targetNotFound(targetId);
      const key = s.keys.get(targetId)?.get(keyId);
      if (key === undefined) throw new ConnectError(`public key "${String(keyId)}" of target "${targetId}" not found`, Code.NotFound);
      return { s, target, key };
    };
    /** setEncryptionKey replaces the target's active key (undefined: none), keeping its change date. */
    const setEncryptionKey = (s: InstanceState, target: Target, key: StoredKey | undefined) => {
      const { encryptionKey: _, ...rest } = target;
      const next: Target = Object.freeze(
        key === undefined
          ? rest
          : {
              ...rest,
              encryptionKey: Object.freeze({
                keyId: key.keyId,
                publicKey: key.publicKey,
                ...(key.expirationDate === undefined ? {} : { expirationDate: key.expirationDate }),
              }),
            },
      );
      s.targets.set(target.id, next);
      changed({ instanceId, targetIds: [target.id], executionIds: [] });
    };

    return {
      instanceId,

      async createTarget(input: TargetInput) {
        open();
        const fields = validateTargetInput(input);
        const s = write();
        if (s.targetIdsByName.has(fields.name)) throw nameTaken(fields.name);
        if (s.targets.size >= maxTargets) throw targetCapReached(instanceId, maxTargets);
        const date = now();
        const target: Target = Object.freeze({
          id: newId(),
          instanceId,
          ...fields,
          signingKey: generateSigningKey(),
          creationDate: date,
          changeDate: date,
        });
        s.targets.set(target.id, target);
        s.targetIdsByName.set(target.name, target.id);
        changed({ instanceId, targetIds: [target.id], executionIds: [] });
        return target;
      },

      async updateTarget(id: string, patch: TargetPatch) {
        open();
        const s = read();
        const current = s?.targets.get(id);
        if (s === undefined || current === undefined) {
          throw new ConnectError(`target "${id}" not found`, Code.NotFound);
        }
        const next = Object.freeze(applyTargetPatch(current, patch, now()));
        const owner = s.targetIdsByName.get(next.name);
        if (owner !== undefined && owner !== id) throw nameTaken(next.name);
        s.targetIdsByName.delete(current.name);
        s.targetIdsByName.set(next.name, id);
        s.targets.set(id, next);
        changed({ instanceId, targetIds: [id], executionIds: [] });
        return next;
      },

      async deleteTarget(id: string) {
        open();
        const s = read();
        const current = s?.targets.get(id);
        if (s === undefined || current === undefined) return false;
        s.targets.delete(id);
        s.targetIdsByName.delete(current.name);
        s.keys.delete(id);
        const date = now();
        const touched = new Set<string>();
        const referring = [...s.executions.values()].filter((e) => e.targets.some((t) => "target" in t && t.target === id)).map((e) => e.id);
        for (const executionId of referring) {
          // Read again: a cascade of an earlier one may have changed or removed it.
          const e = s.executions.get(executionId);
          if (e === undefined) continue;
          const rest = e.targets.filter((t) => !("target" in t && t.target === id));
          touched.add(e.id);
          if (rest.length === 0) dropExecution(s, e.id, date, touched);
          else putExecution(s, e.id, freezeExecution({ ...e, targets: rest, changeDate: date }));
        }
        changed({ instanceId, targetIds: [id], executionIds: [...touched] });
        return true;
      },

      async getTarget(id: string) {
        open();
        return read()?.targets.get(id);
      },

      async listTargets() {
        open();
        return [...(read()?.targets.values() ?? [])];
      },

      async addPublicKey(targetId: string, input: PublicKeyInput) {
        open();
        const date = now();
        const fields = validatePublicKeyInput(input, date);
        const s = read();
        if (s === undefined || !s.targets.has(targetId)) throw targetNotFound(targetId);
        let keys = s.keys.get(targetId);
        if (keys === undefined) s.keys.set(targetId, (keys = new Map()));
        if (keys.size >= maxPublicKeysPerTarget) {
          throw new ConnectError(`target "${targetId}" has ${maxPublicKeysPerTarget} public keys already; remove one first`, Code.ResourceExhausted);
        }
        const key: StoredKey = Object.freeze({
          keyId: newId(),
          targetId,
          publicKey: fields.pem,
          fingerprint: fields.fingerprint,
          keyType: fields.keyType,
          activated: false,
          ...(fields.expirationDate === undefined ? {} : { expirationDate: fields.expirationDate }),
          creationDate: date,
          changeDate: date,
        });
        keys.set(key.keyId, key);
        return publicKeyOf(key, date);
      },

      async activatePublicKey(targetId: string, keyId: string) {
        open();
        const { s, target, key } = keyOf(targetId, keyId);
        const date = now();
        if (!isKeyUsable(key.expirationDate, date)) {
          throw new ConnectError(`public key "${keyId}" of target "${targetId}" has expired`, Code.FailedPrecondition);
        }
        if (key.activated) return publicKeyOf(key, date);
        const keys = s.keys.get(targetId)!;
        for (const other of keys.values()) {
          if (other.activated) keys.set(other.keyId, Object.freeze({ ...other, activated: false, changeDate: date }));
        }
        const next: StoredKey = Object.freeze({ ...key, activated: true, changeDate: date });
        keys.set(keyId, next);
        setEncryptionKey(s, target, next);
        return publicKeyOf(next, date);
      },

      async deactivatePublicKey(targetId: string, keyId: string) {
        open();
        const { s, target, key } = keyOf(targetId, keyId);
        const date = now();
        if (!key.activated) return publicKeyOf(key, date);
        const next: StoredKey = Object.freeze({ ...key, activated: false, changeDate: date });
        s.keys.get(targetId)!.set(keyId, next);
        // An expired key was no longer used: nothing changes for the target's calls, but its record does.
        setEncryptionKey(s, target, undefined);
        return publicKeyOf(next, date);
      },

      async removePublicKey(targetId: string, keyId: string) {
        open();
        const s = read();
        const target = s?.targets.get(targetId);
        const key = s?.keys.get(targetId)?.get(keyId);
        if (s === undefined || target === undefined || key === undefined) return false;
        if (key.activated && isKeyUsable(key.expirationDate, now())) {
          throw new ConnectError(
            `public key "${keyId}" is the active key of target "${targetId}": deactivate it before removing it`,
            Code.FailedPrecondition,
          );
        }
        s.keys.get(targetId)!.delete(keyId);
        if (key.activated) setEncryptionKey(s, target, undefined);
        return true;
      },

      async listPublicKeys(targetId: string) {
        open();
        const date = now();
        return [...(read()?.keys.get(targetId)?.values() ?? [])].map((k) => publicKeyOf(k, date));
      },

      async setExecution(condition: Condition, list: readonly ExecutionTarget[]) {
        open();
        const normalized = validateCondition(condition);
        const id = executionId(normalized);
        const entries = validateExecutionTargets(id, list);
        const s = write();
        const current = s.executions.get(id);
        if (entries.length === 0) {
          if (current !== undefined) {
            const touched = new Set<string>();
            dropExecution(s, id, now(), touched);
            changed({ instanceId, targetIds: [], executionIds: [...touched] });
          }
          return undefined;
        }
        for (const entry of entries) {
          if ("target" in entry && !s.targets.has(entry.target)) {
            throw new ConnectError(`target "${entry.target}" not found`, Code.NotFound);
          }
        }
        checkIncludeGraph(id, entries, (x) => s.executions.get(x)?.targets, (x) => includersOf(s, x));
        if (current === undefined && s.executions.size >= maxExecutions) throw executionCapReached(instanceId, maxExecutions);
        const date = now();
        const execution = freezeExecution({
          id,
          condition: normalized,
          targets: entries,
          creationDate: current?.creationDate ?? date,
          changeDate: date,
        });
        putExecution(s, id, execution);
        changed({ instanceId, targetIds: [], executionIds: [id] });
        return execution;
      },

      async getExecution(id: string) {
        open();
        return read()?.executions.get(id);
      },

      async listExecutions() {
        open();
        return [...(read()?.executions.values() ?? [])].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      },

      async snapshot(): Promise<ActionSnapshot> {
        open();
        const s = read();
        return { targets: [...(s?.targets.values() ?? [])], executions: [...(s?.executions.values() ?? [])] };
      },

      async load(ids) {
        open();
        const s = read();
        const targets: Target[] = [];
        const executions: Execution[] = [];
        for (const id of ids.targetIds ?? []) {
          const t = s?.targets.get(id);
          if (t !== undefined) targets.push(t);
        }
        for (const id of ids.executionIds ?? []) {
          const e = s?.executions.get(id);
          if (e !== undefined) executions.push(e);
        }
        return { targets, executions };
      },
    };
  };

  // Views are cheap and not kept: any string may name an instance, and only written ones hold memory.
  const forInstance = (instanceId: string): InstanceStore => view(validateInstanceId(instanceId));
  const root = forInstance(defaultInstanceId);

  return {
    ...root,
    forInstance,
    watch(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      listeners.clear();
    },
  };
}

/** publicKeyOf returns the record of a stored key, `active` as of `date`. */
function publicKeyOf(key: StoredKey, date: Date): TargetPublicKey {
  const { activated, ...rest } = key;
  return Object.freeze({ ...rest, active: activated && isKeyUsable(key.expirationDate, date) });
}

function freezeExecution(e: Execution): Execution {
  return Object.freeze({
    ...e,
    condition: Object.freeze({ ...e.condition }),
    targets: Object.freeze(e.targets.map((t) => Object.freeze({ ...t }))),
  });
}
