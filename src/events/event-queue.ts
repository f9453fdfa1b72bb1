/**
 * EventJob is one delivery to do: an event's payload for one target.
 */
export interface EventJob {
  /**
   * The instance (tenant) of the event and its target, default "" (the
   * default instance). Dead jobs are listed and requeued per instance, and
   * workers share their slots fairly between instances (see ClaimOptions).
   */
  readonly instanceId?: string;
  readonly targetId: string;
  /** The execution that chose the target, for records. */
  readonly executionId: string;
  readonly eventType: string;
  /**
   * Jobs with the same instance, target and ordering key (a lane) are
   * delivered one after the other, in enqueue order: the aggregate
   * ("<instance>/<type>/<id>").
   */
  readonly orderingKey: string;
  /** The JSON payload, sent as is. */
  readonly body: string;
  /** When the event happened. */
  readonly createdAt: Date;
  /**
   * How long one attempt may take; a claim leases the job for this long plus
   * a grace period, after which another worker may take it over.
   */
  readonly timeoutMs: number;
}

/**
 * QueuedJob is a claimed job.
 */
export interface QueuedJob extends EventJob {
  /** The job's instance, "" for the default one. */
  readonly instanceId: string;
  readonly id: string;
  /** This attempt's number, 1 for the first (also the first after a requeue). */
  readonly attempt: number;
  /** Identifies this claim; a stale claim (after the lease ran out) cannot settle the job. */
  readonly lease: string;
  /** When the job was enqueued, or requeued (see EventQueue.requeueDead). */
  readonly enqueuedAt: Date;
  /** The error of the previous attempt, "" for the first; after a requeue, the error the job was given up with. */
  readonly lastError: string;
}

/**
 * DeadJob is a job that was given up.
 */
export interface DeadJob extends EventJob {
  /** The job's instance, "" for the default one. */
  readonly instanceId: string;
  /** The ID the job had in the queue; a requeue gives it a new one. */
  readonly id: string;
  readonly attempts: number;
  readonly error: string;
  readonly enqueuedAt: Date;
  readonly diedAt: Date;
}

/**
 * Settlement is the outcome of one claimed job's attempt (see EventQueue.settle):
 * delivered ("complete": the job is removed), to be tried again at `runAt`
 * ("retry": the job keeps its place in its lane), or given up ("giveUp": the
 * job moves to the dead jobs and its lane goes on).
 */
export type Settlement =
  | { readonly job: QueuedJob; readonly outcome: "complete" }
  | { readonly job: QueuedJob; readonly outcome: "retry"; readonly runAt: Date; readonly error: string }
  | { readonly job: QueuedJob; readonly outcome: "giveUp"; readonly error: string };

/**
 * SettleResult says what became of one Settlement: "settled"; "stale" when
 * the claim no longer holds the job (its lease ran out, or it was settled
 * already), so nothing changed; "busy" when the job's lane was locked by
 * another transaction (an open enqueue into the same lane) and the queue did
 * not wait for it (SettleOptions.wait false): nothing changed, settle it again
 * a moment later.
 */
export type SettleResult = "settled" | "stale" | "busy";

/**
 * SettleOptions configures EventQueue.settle.
 */
export interface SettleOptions {
  /**
   * Wait for lanes that other transactions hold (true), or answer "busy" for
   * their jobs at once (false), default true.
   */
  readonly wait?: boolean;
}

/**
 * ClaimOptions shares a claim between instances. By default a claim leases
 * the due lane heads oldest first, whatever their instance.
 */
export interface ClaimOptions {
  /**
   * The most jobs of one instance the claim leases, default no limit. The
   * claim takes the instances' heads in turns: the oldest of every instance,
   * then the second oldest of every instance, and so on (among the due heads
   * it looks at, which are the oldest ones).
   */
  readonly maxPerInstance?: number;
  /**
   * Lower limits for some instances, for example what they have left of a
   * worker's per-instance cap of deliveries in flight; 0 leaves an instance
   * out of the claim. Default none.
   */
  readonly instanceLimits?: ReadonlyMap<string, number>;
}

/**
 * DeadJobQuery selects the dead jobs of one instance that requeueDead moves
 * back into the queue: the one with `id`, or all of `targetId`, or all of
 * `eventType` (several fields: the jobs that match all of them). At least one
 * of `id`, `targetId` and `eventType` must be set.
 */
export interface DeadJobQuery {
  /** The instance, "" for the default one; required. */
  readonly instanceId: string;
  readonly id?: string;
  readonly targetId?: string;
  readonly eventType?: string;
}

/**
 * ListDeadOptions configures EventQueue.listDead.
 */
export interface ListDeadOptions {
  /** Only this instance's dead jobs, default those of every instance. */
  readonly instanceId?: string;
  /** At most this many, default 100. */
  readonly limit?: number;
}

/**
 * EventQueue holds event deliveries until they succeed or are given up. Every
 * implementation passes the shared contract suite (describeEventQueueContract
 * of "connect-actions/testing").
 */
export interface EventQueue {
  /** enqueue adds jobs, all or none, in order. */
  enqueue(jobs: readonly EventJob[]): Promise<void>;
  /**
   * claim leases up to `limit` jobs that are due. Only the oldest unsettled job
   * of each lane (instance, target, ordering key) can be claimed, so
   * deliveries of one aggregate to one target happen one at a time, in order.
   * The lease lasts the job's timeoutMs plus `graceMs`. See ClaimOptions for
   * how instances share a claim.
   */
  claim(limit: number, graceMs: number, options?: ClaimOptions): Promise<QueuedJob[]>;
  /**
   * settle applies the outcomes of claimed jobs, all in one go where the
   * implementation can, and resolves one SettleResult per settlement, in
   * order. Within one call, give each job at most once.
   */
  settle(settlements: readonly Settlement[], options?: SettleOptions): Promise<SettleResult[]>;
  /**
   * settleAndClaim settles like settle with `wait` false, then claims like
   * claim, in one round trip where the implementation can (a worker's cycle).
   * The claim may lease the successors of the jobs just settled.
   */
  settleAndClaim(
    settlements: readonly Settlement[],
    limit: number,
    graceMs: number,
    options?: ClaimOptions,
  ): Promise<{ readonly results: SettleResult[]; readonly jobs: QueuedJob[] }>;
  /** complete removes a delivered job. Resolves false for a stale claim. */
  complete(job: QueuedJob): Promise<boolean>;
  /** retry makes the job due again at `runAt`, keeping its place in its order. Resolves false for a stale claim. */
  retry(job: QueuedJob, runAt: Date, error: string): Promise<boolean>;
  /** giveUp moves the job to the dead jobs. Resolves false for a stale claim. */
  giveUp(job: QueuedJob, error: string): Promise<boolean>;
  /**
   * listDead returns the latest given-up jobs, newest first: of one instance
   * or of all (see ListDeadOptions), at most `limit` (default 100). A number
   * is the limit, for all instances.
   */
  listDead(options?: number | ListDeadOptions): Promise<DeadJob[]>;
  /**
   * requeueDead moves the dead jobs that `query` selects back into the queue,
   * each once: of two requeues of the same dead job, running at the same time
   * or not, one moves it and the other finds nothing. A requeued job gets a
   * new ID and goes to the end of its lane, behind the jobs the lane holds at
   * the time (a given-up delivery is a new delivery of an old event, so a
   * receiver that needs order looks at the event's sequence); several jobs of
   * one lane requeued at once keep the order they were first enqueued in. It
   * starts again at attempt 1, its enqueuedAt is the time of the requeue and
   * its lastError the error it was given up with. Resolves how many jobs
   * were requeued. Rejects with Code.InvalidArgument when no field but the
   * instance is set.
   */
  requeueDead(query: DeadJobQuery): Promise<number>;
  /** pending counts the jobs not yet settled (due, scheduled or leased). */
  pending(): Promise<number>;
  /** watch calls `listener` when jobs may have become claimable (enqueued here or elsewhere). */
  watch(listener: () => void): () => void;
  close(): Promise<void>;
}
