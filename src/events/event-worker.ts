import type { ClaimOptions, EventQueue, QueuedJob, SettleResult, Settlement } from "./event-queue.js";
import type { ExecutionPlanner } from "../plan/execution-planner.js";
import { type Logger, createJsonLogger } from "../logger.js";
import { ConnectError } from "@connectrpc/connect";
import { checkMaxHops } from "../dispatch/hop.js";
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
  /**
   * The Actions-Hop value of deliveries: the publisher's maxHops (see
   * EventPublisherOptions.maxHops), default defaultMaxHops (1). The queue does
   * not keep the hop count of the request that published an event, so a
   * delivery counts as the last call a chain may make: a request its target
   * makes in turn runs no executions (it is refused when one would run) and
   * publishes no event that would be delivered.
   */
  readonly maxHops?: number;
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

/** The most settlements sent to the queue in one call. */
const maxSettleBatch = 512;
/** Delay before a settlement the queue found busy (or could not take) is sent again, doubling up to settleRetryMaxMs. */
const settleRetryMinMs = 5;
const settleRetryMaxMs = 1000;

interface PendingSettlement {
  readonly settlement: Settlement;
  /** When the claim's lease runs out (by this process's clock): past it, settling is pointless. */
  readonly leaseEnd: number;
  retryMs: number;
}

/**
 * createEventWorker returns an EventWorker: at-least-once delivery, in order
 * per target and aggregate, retried with exponential backoff, given up (and
 * kept among the queue's dead jobs) after a permanent failure, when the
 * target is gone, or once the job is older than maxAgeMs.
 *
 * The worker runs one cycle at a time (EventQueue.settleAndClaim): it settles
 * every delivery that finished since the last cycle and claims jobs for every
 * free slot, instances in turns, none over maxInFlightPerInstance, in one
 * round trip. A cycle starts when a delivery finishes, when the queue tells
 * of new jobs, or every pollIntervalMs. A slot is free again as soon as its
 * delivery finished; its settlement goes with the next cycle. Settlements do
 * not wait for lanes that open enqueues hold ("busy"): those are sent again a
 * few milliseconds later, until their lease runs out. A settlement that
 * fails (the database is unreachable) is sent again the same way; one whose
 * lease ran out is dropped, and the job is delivered again by whoever claims
 * it next.
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
  const maxHops = checkMaxHops(options.maxHops);
  let running = false;
  let loop: Promise<void> | undefined;
  /** Deliveries whose attempt has not finished yet, in all and per instance. */
  let inFlight = 0;
  const perInstance = new Map<string, number>();
  /** Finished deliveries waiting for a cycle to settle them, and those waiting to be sent again. */
  const toSettle: PendingSettlement[] = [];
  let delayed = 0;
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

  /** later sends settlements again after their backoff, or drops those whose lease ran out. */
  const later = (pending: PendingSettlement[]) => {
    const now = Date.now();
    const kept = pending.filter((p) => {
      if (now < p.leaseEnd) return true;
      logger.warn("event delivery could not be settled before its lease ran out; it will be delivered again", {
        targetId: p.settlement.job.targetId,
        event: p.settlement.job.eventType,
      });
      return false;
    });
    if (kept.length === 0) return;
    const delay = Math.min(...kept.map((p) => p.retryMs));
    for (const p of kept) p.retryMs = Math.min(settleRetryMaxMs, p.retryMs * 2);
    delayed++;
    setTimeout(() => {
      delayed--;
      toSettle.push(...kept);
      wake();
    }, delay);
  };

  const giveUp = (job: QueuedJob, error: string): Settlement => {
    logger.warn("event delivery given up", { targetId: job.targetId, event: job.eventType, attempt: job.attempt, error });
    return { job, outcome: "giveUp", error };
  };

  /** attempt delivers the job once and returns what became of it. */
  const attempt = async (job: QueuedJob): Promise<Settlement> => {
    const plan = await planner.plan(job.instanceId);
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
        hop: maxHops,
        signal: cancel.signal,
      });
      return { job, outcome: "complete" };
    } catch (e) {
      if (cancel.signal.aborted) {
        // Stopped: give the job back at once (due now), so another worker takes it over without waiting for the lease.
        logger.info("event delivery cancelled by stop, released", { targetId: job.targetId, event: job.eventType, attempt: job.attempt });
        return { job, outcome: "retry", runAt: new Date(), error: "cancelled: the worker stopped during the delivery" };
      }
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
    const leaseEnd = Date.now() + job.timeoutMs + graceMs;
    inFlight++;
    perInstance.set(job.instanceId, (perInstance.get(job.instanceId) ?? 0) + 1);
    void attempt(job)
      .then(
        (settlement) => toSettle.push({ settlement, leaseEnd, retryMs: settleRetryMinMs }),
        (e: unknown) => logger.error("event delivery failed unexpectedly; it will be delivered again", { targetId: job.targetId, error: e }),
      )
      .finally(() => {
        inFlight--;
        const left = (perInstance.get(job.instanceId) ?? 1) - 1;
        if (left > 0) perInstance.set(job.instanceId, left);
        else perInstance.delete(job.instanceId);
        wake();
      });
  };

  /** claimOptions returns what each instance with deliveries in flight has left of its cap. */
  const claimOptions = (): ClaimOptions => {
    const instanceLimits = new Map<string, number>();
    for (const [instance, n] of perInstance) instanceLimits.set(instance, Math.max(0, perInstanceCap - n));
    return { maxPerInstance: perInstanceCap, instanceLimits };
  };

  /** cycle settles what finished and claims for the free slots; resolves whether to cycle again at once. */
  const cycle = async (): Promise<boolean> => {
    const batch = toSettle.splice(0, maxSettleBatch);
    const free = running ? concurrency - inFlight : 0;
    if (batch.length === 0 && free <= 0) return false;
    let out: { readonly results: SettleResult[]; readonly jobs: QueuedJob[] };
    try {
      out = await queue.settleAndClaim(
        batch.map((p) => p.settlement),
        free,
        graceMs,
        claimOptions(),
      );
    } catch (e) {
      logger.error("event queue could not be read", { error: e, settlements: batch.length });
      later(batch);
      return false;
    }
    const again: PendingSettlement[] = [];
    batch.forEach((p, i) => {
      if (out.results[i] === "busy") again.push(p);
    });
    later(again);
    for (const job of out.jobs) start(job);
    // An instance that reached its cap may have hidden the jobs of others:
    // claim again without it. More finished deliveries: settle them.
    const capped = out.jobs.some((j) => (perInstance.get(j.instanceId) ?? 0) >= perInstanceCap);
    return toSettle.length > 0 || (capped && out.jobs.length < free);
  };

  const run = async () => {
    while (running || inFlight > 0 || toSettle.length > 0 || delayed > 0) {
      if (await cycle()) continue;
      await sleep();
    }
  };

  return {
    start() {
      if (running) return;
      running = true;
      if (cancel.signal.aborted) cancel = new AbortController();
      unwatch = queue.watch(wake);
      loop ??= run().finally(() => {
        loop = undefined;
      });
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
      } finally {
        signal?.removeEventListener("abort", onAbort);
      }
    },
    wake,
    inFlight: () => inFlight,
  };
}
