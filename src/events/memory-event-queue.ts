import { Code, ConnectError } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import type { DeadJob, EventJob, EventQueue, ListDeadOptions, QueuedJob } from "./event-queue.js";

/**
 * MemoryEventQueueOptions configures createMemoryEventQueue.
 */
export interface MemoryEventQueueOptions {
  /** Clock, default `() => new Date()`. */
  readonly now?: () => Date;
  /** How many dead jobs are kept, default 10 000 (the oldest go first). */
  readonly maxDead?: number;
}

interface Entry {
  readonly id: string;
  readonly job: EventJob;
  readonly enqueuedAt: Date;
  attempts: number;
  runAt: number;
  lease: string;
  leaseUntil: number;
  lastError: string;
}

/**
 * createMemoryEventQueue returns an EventQueue kept in this process: deliveries
 * survive target outages, not restarts. Use the PostgreSQL queue for
 * durability across restarts and replicas.
 */
export function createMemoryEventQueue(options: MemoryEventQueueOptions = {}): EventQueue {
  const now = options.now ?? (() => new Date());
  const maxDead = options.maxDead ?? 10_000;
  // Unsettled jobs per (target, ordering key), oldest first.
  const lanes = new Map<string, Entry[]>();
  const dead: DeadJob[] = [];
  const listeners = new Set<() => void>();
  let sequence = 0;
  let count = 0;
  let closed = false;

  const open = () => {
    if (closed) throw new ConnectError("event queue is closed", Code.Unavailable);
  };
  const laneKey = (job: EventJob) => `${job.targetId}\u0000${job.orderingKey}`;
  const head = (job: QueuedJob): Entry | undefined => {
    const lane = lanes.get(laneKey(job));
    const first = lane?.[0];
    return first !== undefined && first.id === job.id && first.lease === job.lease && first.leaseUntil > now().getTime()
      ? first
      : undefined;
  };
  const settle = (job: QueuedJob) => {
    const key = laneKey(job);
    const lane = lanes.get(key)!;
    lane.shift();
    if (lane.length === 0) lanes.delete(key);
    count--;
  };

  return {
    async enqueue(jobs) {
      open();
      const at = now();
      for (const job of jobs) {
        const entry: Entry = {
          id: String(++sequence),
          job: Object.freeze({ ...job }),
          enqueuedAt: at,
          attempts: 0,
          runAt: at.getTime(),
          lease: "",
          leaseUntil: 0,
          lastError: "",
        };
        const key = laneKey(job);
        let lane = lanes.get(key);
        if (lane === undefined) lanes.set(key, (lane = []));
        lane.push(entry);
        count++;
      }
      if (jobs.length > 0) for (const l of listeners) l();
    },

    async claim(limit, graceMs) {
      open();
      const t = now().getTime();
      const due: Entry[] = [];
      for (const lane of lanes.values()) {
        const first = lane[0]!;
        if (first.runAt <= t && first.leaseUntil <= t) due.push(first);
      }
      due.sort((a, b) => Number(a.id) - Number(b.id));
      return due.slice(0, limit).map((e) => {
        e.attempts++;
        e.lease = randomUUID();
        e.leaseUntil = t + e.job.timeoutMs + graceMs;
        return { ...e.job, id: e.id, attempt: e.attempts, lease: e.lease, enqueuedAt: e.enqueuedAt, lastError: e.lastError };
      });
    },

    async complete(job) {
      open();
      if (head(job) === undefined) return false;
      settle(job);
      return true;
    },

    async retry(job, runAt, error) {
      open();
      const e = head(job);
      if (e === undefined) return false;
      e.runAt = runAt.getTime();
      e.lease = "";
      e.leaseUntil = 0;
      e.lastError = error;
      return true;
    },

    async giveUp(job, error) {
      open();
      const e = head(job);
      if (e === undefined) return false;
      settle(job);
      dead.push(Object.freeze({ ...e.job, id: e.id, attempts: e.attempts, error, enqueuedAt: e.enqueuedAt, diedAt: now() }));
      if (dead.length > maxDead) dead.splice(0, dead.length - maxDead);
      return true;
    },

    async listDead(listOptions?: number | ListDeadOptions) {
      open();
      const { instanceId, limit = 100 } = typeof listOptions === "number" ? { limit: listOptions } : (listOptions ?? {});
      const out: DeadJob[] = [];
      for (let i = dead.length - 1; i >= 0 && out.length < limit; i--) {
        if (instanceId === undefined || (dead[i]!.instanceId ?? "") === instanceId) out.push(dead[i]!);
      }
      return out;
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
