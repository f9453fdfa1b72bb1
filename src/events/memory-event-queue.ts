import { Code, ConnectError } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import type {
  ClaimOptions,
  DeadJob,
  DeadJobQuery,
  EventJob,
  EventQueue,
  ListDeadOptions,
  QueuedJob,
  SettleResult,
  Settlement,
} from "./event-queue.js";
import { pickInTurns, validateDeadJobQuery, validateListDeadOptions } from "./queue-options.js";

/**
 * MemoryEventQueueOptions configures createMemoryEventQueue.
 */
export interface MemoryEventQueueOptions {
  /** Clock, default `() => new Date()`. */
  readonly now?: () => Date;
  /** How many dead jobs are kept, default 10 000 (the oldest go first, across all instances). */
  readonly maxDead?: number;
}

interface Entry {
  readonly id: number;
  readonly job: EventJob & { readonly instanceId: string };
  enqueuedAt: Date;
  attempts: number;
  runAt: number;
  lease: string;
  leaseUntil: number;
  lastError: string;
}

/**
 * createMemoryEventQueue returns an EventQueue kept in this process: deliveries
 * survive target outages, not restarts. Use the PostgreSQL queue for
 * durability across restarts and replicas. Settling never finds a lane busy.
 */
export function createMemoryEventQueue(options: MemoryEventQueueOptions = {}): EventQueue {
  const now = options.now ?? (() => new Date());
  const maxDead = options.maxDead ?? 10_000;
  // Unsettled jobs per lane (instance, target, ordering key), oldest first.
  const lanes = new Map<string, Entry[]>();
  let dead: DeadJob[] = [];
  const listeners = new Set<() => void>();
  let sequence = 0;
  let count = 0;
  let closed = false;

  const open = () => {
    if (closed) throw new ConnectError("event queue is closed", Code.Unavailable);
  };
  const laneKey = (job: EventJob) => `${job.instanceId}\u0000${job.targetId}\u0000${job.orderingKey}`;
  const head = (job: QueuedJob): Entry | undefined => {
    const lane = lanes.get(laneKey(job));
    const first = lane?.[0];
    return first !== undefined && String(first.id) === job.id && first.lease === job.lease && first.leaseUntil > now().getTime()
      ? first
      : undefined;
  };
  const removeHead = (job: QueuedJob) => {
    const key = laneKey(job);
    const lane = lanes.get(key)!;
    lane.shift();
    if (lane.length === 0) lanes.delete(key);
    count--;
  };
  const push = (job: EventJob & { readonly instanceId: string }, at: Date, lastError: string) => {
    const entry: Entry = { id: ++sequence, job, enqueuedAt: at, attempts: 0, runAt: at.getTime(), lease: "", leaseUntil: 0, lastError };
    const key = laneKey(job);
    let lane = lanes.get(key);
    if (lane === undefined) lanes.set(key, (lane = []));
    lane.push(entry);
    count++;
  };
  const tell = () => {
    for (const l of listeners) l();
  };
  const apply = (s: Settlement): SettleResult => {
    const e = head(s.job);
    if (e === undefined) return "stale";
    if (s.outcome === "retry") {
      if (!(s.runAt instanceof Date) || Number.isNaN(s.runAt.getTime())) {
        throw new ConnectError("runAt must be a valid date", Code.InvalidArgument);
      }
      e.runAt = s.runAt.getTime();
      e.lease = "";
      e.leaseUntil = 0;
      e.lastError = s.error;
      return "settled";
    }
    removeHead(s.job);
    if (s.outcome === "giveUp") {
      dead.push(
        Object.freeze({ ...e.job, id: String(e.id), attempts: e.attempts, error: s.error, enqueuedAt: e.enqueuedAt, diedAt: now() }),
      );
      if (dead.length > maxDead) dead.splice(0, dead.length - maxDead);
    }
    return "settled";
  };

  const claim = (limit: number, graceMs: number, claimOptions: ClaimOptions = {}): QueuedJob[] => {
    const t = now().getTime();
    const due: Entry[] = [];
    for (const lane of lanes.values()) {
      const first = lane[0]!;
      if (first.runAt <= t && first.leaseUntil <= t) due.push(first);
    }
    due.sort((a, b) => a.id - b.id);
    const picked = pickInTurns(due, (e) => e.job.instanceId, Math.floor(limit), claimOptions);
    return picked.map((e) => {
      e.attempts++;
      e.lease = randomUUID();
      e.leaseUntil = t + e.job.timeoutMs + graceMs;
      return {
        ...e.job,
        id: String(e.id),
        attempt: e.attempts,
        lease: e.lease,
        enqueuedAt: e.enqueuedAt,
        lastError: e.lastError,
      };
    });
  };

  return {
    async enqueue(jobs) {
      open();
      const at = now();
      for (const job of jobs) push(Object.freeze({ ...job, instanceId: job.instanceId ?? "" }), at, "");
      if (jobs.length > 0) tell();
    },

    async claim(limit, graceMs, claimOptions) {
      open();
      return claim(limit, graceMs, claimOptions);
    },

    async settleAndClaim(settlements, limit, graceMs, claimOptions) {
      open();
      const results = settlements.map(apply);
      return { results, jobs: claim(limit, graceMs, claimOptions) };
    },

    async settle(settlements) {
      open();
      return settlements.map(apply);
    },

    async complete(job) {
      open();
      return apply({ job, outcome: "complete" }) === "settled";
    },

    async retry(job, runAt, error) {
      open();
      return apply({ job, outcome: "retry", runAt, error }) === "settled";
    },

    async giveUp(job, error) {
      open();
      return apply({ job, outcome: "giveUp", error }) === "settled";
    },

    async listDead(listOptions?: number | ListDeadOptions) {
      open();
      const { instanceId, limit } = validateListDeadOptions(listOptions);
      const out: DeadJob[] = [];
      for (let i = dead.length - 1; i >= 0 && out.length < limit; i--) {
        if (instanceId === undefined || dead[i]!.instanceId === instanceId) out.push(dead[i]!);
      }
      return out;
    },

    async requeueDead(query: DeadJobQuery) {
      open();
      validateDeadJobQuery(query);
      const matches = (d: DeadJob) =>
        d.instanceId === query.instanceId &&
        (query.id === undefined || d.id === query.id) &&
        (query.targetId === undefined || d.targetId === query.targetId) &&
        (query.eventType === undefined || d.eventType === query.eventType);
      const moved = dead.filter(matches);
      if (moved.length === 0) return 0;
      dead = dead.filter((d) => !matches(d));
      // In the order they were first enqueued.
      moved.sort((a, b) => Number(a.id) - Number(b.id));
      const at = now();
      for (const d of moved) {
        const { id: _id, attempts: _attempts, error, enqueuedAt: _enqueuedAt, diedAt: _diedAt, ...job } = d;
        push(Object.freeze(job), at, error);
      }
      tell();
      return moved.length;
    },

    async pending() {
      open();
      return count;
    },

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
