import type { EventQueue, QueuedJob } from "./event-queue.js";
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
  /** How often the queue is polled when nothing wakes the worker, default 1 000 ms. */
  readonly pollIntervalMs?: number;
  /** Time added to a job's timeout for its lease, default 5 000 ms. */
  readonly graceMs?: number;
  /** Default: see RetryPolicy. */
  readonly retry?: RetryPolicy;
  /** Age of an event after which its delivery is given up, default 24 h. */
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
  /**
   * stop stops claiming and waits for the deliveries in flight to settle.
   * When `options.signal` aborts first (the end of a shutdown's grace
   * period), the deliveries still in flight are cancelled and their jobs
   * made due again at once, so that another worker (another replica) takes
   * them over without waiting for their leases to run out.
   */
  stop(options?: EventWorkerStopOptions): Promise<void>;
  /** wake makes the worker look at the queue now. */
  wake(): void;
  /** inFlight returns the number of deliveries in flight (claimed and not settled yet). */
  inFlight(): number;
}

/**
 * EventWorkerStopOptions configures EventWorker.stop.
 */
export interface EventWorkerStopOptions {
  /** Cancels the deliveries still in flight when it aborts, default none (stop waits for them). */
  readonly signal?: AbortSignal;
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

/**
 * createEventWorker returns an EventWorker: at-least-once delivery, in order
 * per target and aggregate, retried with exponential backoff, given up (and
 * kept among the queue's dead jobs) after a permanent failure, when the
 * target is gone, or once the event is older than maxAgeMs.
 */
export function createEventWorker(options: EventWorkerOptions): EventWorker {
  const { queue, planner, dispatcher } = options;
  const concurrency = options.concurrency ?? 16;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const graceMs = options.graceMs ?? 5000;
  const maxAgeMs = options.maxAgeMs ?? 24 * 3600_000;
  const policy = options.retry ?? {};
  const logger = options.logger ?? createJsonLogger();
  let running = false;
  let loop: Promise<void> | undefined;
  let inFlight = 0;
  const settled = new Set<Promise<void>>();
  let wakeUp: (() => void) | undefined;
  let woken = false;
  let unwatch: (() => void) | undefined;
  /** Cancels the deliveries in flight when a stop's grace period ends. */
  let cancel = new AbortController();

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

  const giveUp = async (job: QueuedJob, error: string) => {
    logger.warn("event delivery given up", { targetId: job.targetId, event: job.eventType, attempt: job.attempt, error });
    await queue.giveUp(job, error);
  };

  const deliver = async (job: QueuedJob) => {
    const plan = await planner.plan(job.instanceId);
    const target = plan.target(job.targetId);
    if (target === undefined) {
      await giveUp(job, "the target was deleted");
      return;
    }
    if (Date.now() - job.createdAt.getTime() > maxAgeMs) {
      await giveUp(job, `older than ${maxAgeMs} ms; last error: ${job.lastError || "none"}`);
      return;
    }
    try {
      await dispatcher.call({
        target,
        executionId: job.executionId,
        trigger: job.eventType,
        body: job.body,
        attempt: job.attempt,
        timeoutMs: job.timeoutMs,
        ignoreBody: true,
        signal: cancel.signal,
      });
      await queue.complete(job);
    } catch (e) {
      if (cancel.signal.aborted) {
        // Stopped: give the job back at once, so another worker takes it over now.
        logger.info("event delivery cancelled by stop, released", { targetId: job.targetId, event: job.eventType, attempt: job.attempt });
        await queue.retry(job, new Date(), "cancelled: the worker stopped during the delivery");
        return;
      }
      const detail = errorDetail(e);
      if (isPermanentFailure(e)) {
        await giveUp(job, detail);
        return;
      }
      const runAt = new Date(Date.now() + retryDelayMs(policy, job.attempt));
      if (runAt.getTime() - job.createdAt.getTime() > maxAgeMs) {
        await giveUp(job, `older than ${maxAgeMs} ms before its next attempt; last error: ${detail}`);
        return;
      }
      logger.info("event delivery failed, will retry", { targetId: job.targetId, event: job.eventType, attempt: job.attempt, runAt, error: detail });
      await queue.retry(job, runAt, detail);
    }
  };

  const run = async () => {
    while (running) {
      const free = concurrency - inFlight;
      let claimed = 0;
      if (free > 0) {
        try {
          const jobs = await queue.claim(free, graceMs);
          claimed = jobs.length;
          for (const job of jobs) {
            inFlight++;
            const p: Promise<void> = deliver(job)
              .catch((e: unknown) => logger.error("event delivery could not be settled", { targetId: job.targetId, error: e }))
              .finally(() => {
                inFlight--;
                settled.delete(p);
                wake();
              });
            settled.add(p);
          }
        } catch (e) {
          logger.error("event queue could not be read", { error: e });
        }
      }
      if (claimed === 0 || claimed < free) await sleep();
    }
  };

  return {
    start() {
      if (running) return;
      running = true;
      if (cancel.signal.aborted) cancel = new AbortController();
      unwatch = queue.watch(wake);
      loop = run();
    },
    async stop(stopOptions = {}) {
      running = false;
      unwatch?.();
      wake();
      const { signal } = stopOptions;
      const onAbort = () => cancel.abort();
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await loop;
        await Promise.all(settled);
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    },
    wake,
    inFlight: () => inFlight,
  };
}
