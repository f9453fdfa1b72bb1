import type { ClaimOptions, EventQueue, QueuedJob, SettleResult, Settlement } from "./event-queue.js";
import type { ExecutionPlanner } from "../plan/execution-planner.js";
import { type Logger, createJsonLogger } from "../logger.js";
import { ConnectError } from "@connectrpc/connect";
import { errorDetail, type TargetDispatcher, TargetFailure, targetStatusOf } from "../dispatch/target-dispatcher.js";

/**
 * RetryPolicy says when a failed delivery is tried again: after
 * initialDelayMs, multiplied by `multiplier` per attempt up to maxDelayMs,
 * each delay varied by ±jitter (a fraction) so that workers spread out.
 */
export interface RetryPolicy {
  /** Default 1 000 ms. */
  readonly initialDelayMs?: number;
  /** Default 60 000 ms. */
  readonly maxDelayMs?: number;
  /** Default 2. */
  readonly multiplier?: number;
  /** Default 0.2. */
  readonly jitter?: number;
}

/**
 * EventWorkerOptions configures createEventWorker.
 */
export interface EventWorkerOptions {
  readonly queue: EventQueue;
  /** Gives the current version of each target (endpoint, key, timeout). */
  readonly planner: ExecutionPlanner;
  readonly dispatcher: TargetDispatcher;
  /** Deliveries in flight at once, default 16. */
  readonly concurrency?: number;
  /**
   * Deliveries of one instance in flight at once, default concurrency minus
   * a quarter of it rounded up (12 of 16), at least 1: the slots left over
   * stay open to the other instances when one instance's targets hang.
   */
  readonly maxInFlightPerInstance?: number;
  /** How often the queue is polled when nothing wakes the worker, default 1 000 ms. */
  readonly pollIntervalMs?: number;
  /** Time added to a job's timeout for its lease, default 5 000 ms. */
  readonly graceMs?: number;
  /** Default: see RetryPolicy. */
  readonly retry?: RetryPolicy;
  /**
   * How long a delivery is tried, counted from when its job was enqueued
   * (or requeued), after which it is given up; default 24 h.
   */
  readonly maxAgeMs?: number;
  /** Logger, default JSON lines on stderr at level "info". */
  readonly logger?: Logger;
}

/**
 * EventWorker delivers queued events to their targets.
 */
export interface EventWorker {
  /** start begins claiming and delivering; calling it again does nothing. */
  start(): void;
  /** stop stops claiming and waits for the deliveries in flight to settle. */
  stop(): Promise<void>;
  /** wake makes the worker look at the queue now. */
  wake(): void;
}

/**
 * retryDelayMs returns the delay before attempt `attempt + 1` after attempt
 * `attempt` failed, following the policy (jitter from `random`, default Math.random).
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const initial = policy.initialDelayMs ?? 1000;
  const max = policy.maxDelayMs ?? 60_000;
  const base = Math.min(max, initial * (policy.multiplier ?? 2) ** Math.max(0, attempt - 1));
  const jitter = policy.jitter ?? 0.2;
  return Math.max(0, Math.round(base * (1 + jitter * (2 * random() - 1))));
}

/**
 * isPermanentFailure tells whether a delivery error is not worth retrying: a
 * denied endpoint, or a 4xx answer other than 408 (timeout) and 429 (too many requests). Timeouts,
 * connection errors and 5xx answers are retried.
 */
export function isPermanentFailure(error: unknown): boolean {
  if (error instanceof ConnectError && error.cause instanceof TargetFailure && error.cause.permanent) return true;
  const status = targetStatusOf(error);
  return status >= 400 && status <= 499 && status !== 408 && status !== 429;
}

/** The most settlements sent to the queue in one call. */
const maxSettleBatch = 256;
/** Delay before a settlement the queue found busy (or could not take) is sent again, doubling up to settleRetryMaxMs. */
const settleRetryMinMs = 5;
const settleRetryMaxMs = 1000;

interface PendingSettlement {
  readonly settlement: Settlement;
  /** When the claim's lease runs out (by this process's clock): past it, settling is pointless. */
  readonly leaseEnd: number;
  retryMs: number;
  readonly done: () => void;
}

/**
 * createEventWorker returns an EventWorker: at-least-once delivery, in order
 * per target and aggregate, retried with exponential backoff, given up (and
 * kept among the queue's dead jobs) after a permanent failure, when the
 * target is gone, or once the job is older than maxAgeMs.
 *
 * It claims as many jobs as it has free slots, instances in turns, none over
 * maxInFlightPerInstance, and settles finished deliveries in batches: while
 * one batch is being settled, the next one gathers. A batch does not wait for
 * lanes that open enqueues hold ("busy"): those settlements are sent again a
 * few milliseconds later, until their lease runs out. A settlement that fails
 * (the database is unreachable) is sent again the same way; one whose lease
 * ran out is dropped, and the job is delivered again by whoever claims it
 * next. A slot is free again once its delivery is settled.
 */
export function createEventWorker(options: EventWorkerOptions): EventWorker {
  const { queue, planner, dispatcher } = options;
  const concurrency = options.concurrency ?? 16;
  const perInstanceCap = Math.max(1, options.maxInFlightPerInstance ?? concurrency - Math.ceil(concurrency / 4));
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const graceMs = options.graceMs ?? 5000;
  const maxAgeMs = options.maxAgeMs ?? 24 * 3600_000;
  const policy = options.retry ?? {};
  const logger = options.logger ?? createJsonLogger();
  let running = false;
  let loop: Promise<void> | undefined;
  let inFlight = 0;
  const perInstance = new Map<string, number>();
  const deliveries = new Set<Promise<void>>();
  let wakeUp: (() => void) | undefined;
  let woken = false;
  let unwatch: (() => void) | undefined;
  const toSettle: PendingSettlement[] = [];
  let flushing = false;

  const wake = () => {
    woken = true;
    wakeUp?.();
  };
  const sleep = () =>
    new Promise<void>((resolve) => {
      if (woken) {
        woken = false;
        resolve();
        return;
      }
      const timer = setTimeout(done, pollIntervalMs);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        woken = false;
        resolve();
      }
      wakeUp = done;
    });

  /** flush sends the gathered settlements to the queue, in batches, one batch at a time. */
  const flush = async () => {
    if (flushing) return;
    flushing = true;
    try {
      while (toSettle.length > 0) {
        const batch = toSettle.splice(0, maxSettleBatch);
        let results: SettleResult[] | undefined;
        try {
          results = await queue.settle(
            batch.map((p) => p.settlement),
            { wait: false },
          );
        } catch (e) {
          logger.warn("event deliveries could not be settled, will try again", { count: batch.length, error: e });
        }
        const now = Date.now();
        const again: PendingSettlement[] = [];
        batch.forEach((p, i) => {
          const result = results?.[i];
          if (result === "settled" || result === "stale") p.done();
          else if (now >= p.leaseEnd) {
            logger.warn("event delivery could not be settled before its lease ran out; it will be delivered again", {
              targetId: p.settlement.job.targetId,
              event: p.settlement.job.eventType,
            });
            p.done();
          } else again.push(p);
        });
        if (again.length > 0) {
          const delay = Math.min(...again.map((p) => p.retryMs));
          for (const p of again) p.retryMs = Math.min(settleRetryMaxMs, p.retryMs * 2);
          setTimeout(() => {
            toSettle.push(...again);
            void flush();
          }, delay);
        }
      }
    } finally {
      flushing = false;
    }
  };

  const settleLater = (settlement: Settlement, leaseEnd: number) =>
    new Promise<void>((done) => {
      toSettle.push({ settlement, leaseEnd, retryMs: settleRetryMinMs, done });
      void flush();
    });

  const giveUp = (job: QueuedJob, error: string): Settlement => {
    logger.warn("event delivery given up", { targetId: job.targetId, event: job.eventType, attempt: job.attempt, error });
    return { job, outcome: "giveUp", error };
  };

  /** attempt delivers the job once and returns what became of it. */
  const attempt = async (job: QueuedJob): Promise<Settlement> => {
    const plan = await planner.plan();
    const target = plan.target(job.targetId);
    if (target === undefined) return giveUp(job, "the target was deleted");
    // Counted from the enqueue (or requeue), or from the event if it is later.
    const since = Math.max(job.createdAt.getTime(), job.enqueuedAt.getTime());
    if (Date.now() - since > maxAgeMs) return giveUp(job, `older than ${maxAgeMs} ms; last error: ${job.lastError || "none"}`);
    try {
      await dispatcher.call({
        target,
        executionId: job.executionId,
        trigger: job.eventType,
        body: job.body,
        attempt: job.attempt,
        timeoutMs: job.timeoutMs,
        ignoreBody: true,
      });
      return { job, outcome: "complete" };
    } catch (e) {
      const detail = errorDetail(e);
      if (isPermanentFailure(e)) return giveUp(job, detail);
      const runAt = new Date(Date.now() + retryDelayMs(policy, job.attempt));
      if (runAt.getTime() - since > maxAgeMs) {
        return giveUp(job, `older than ${maxAgeMs} ms before its next attempt; last error: ${detail}`);
      }
      logger.info("event delivery failed, will retry", { targetId: job.targetId, event: job.eventType, attempt: job.attempt, runAt, error: detail });
      return { job, outcome: "retry", runAt, error: detail };
    }
  };

  const start = (job: QueuedJob) => {
    const claimedAt = Date.now();
    inFlight++;
    perInstance.set(job.instanceId, (perInstance.get(job.instanceId) ?? 0) + 1);
    const p: Promise<void> = attempt(job)
      .then((settlement) => settleLater(settlement, claimedAt + job.timeoutMs + graceMs))
      .catch((e: unknown) => logger.error("event delivery could not be settled", { targetId: job.targetId, error: e }))
      .finally(() => {
        inFlight--;
        const left = (perInstance.get(job.instanceId) ?? 1) - 1;
        if (left > 0) perInstance.set(job.instanceId, left);
        else perInstance.delete(job.instanceId);
        deliveries.delete(p);
        wake();
      });
    deliveries.add(p);
  };

  /** claimOptions returns what each instance with deliveries in flight has left of its cap. */
  const claimOptions = (): ClaimOptions => {
    const instanceLimits = new Map<string, number>();
    for (const [instance, n] of perInstance) instanceLimits.set(instance, Math.max(0, perInstanceCap - n));
    return { maxPerInstance: perInstanceCap, instanceLimits };
  };

  const run = async () => {
    while (running) {
      const free = concurrency - inFlight;
      let claimed = 0;
      let capped = false;
      if (free > 0) {
        try {
          const jobs = await queue.claim(free, graceMs, claimOptions());
          claimed = jobs.length;
          for (const job of jobs) start(job);
          // An instance that reached its cap may have hidden the jobs of
          // others: claim again without it.
          capped = jobs.some((j) => (perInstance.get(j.instanceId) ?? 0) >= perInstanceCap);
        } catch (e) {
          logger.error("event queue could not be read", { error: e });
        }
      }
      if (claimed > 0 && claimed < free && capped) continue;
      if (claimed === 0 || claimed < free) await sleep();
    }
  };

  return {
    start() {
      if (running) return;
      running = true;
      unwatch = queue.watch(wake);
      loop = run();
    },
    async stop() {
      running = false;
      unwatch?.();
      wake();
      await loop;
      await Promise.all(deliveries);
    },
    wake,
  };
}
