/**
 * EventJob is one delivery to do: an event's payload for one target.
 */
export interface EventJob {
  /** The instance of the event and its target, default "" (the default instance). */
  readonly instanceId?: string;
  readonly targetId: string;
  /** The execution that chose the target, for records. */
  readonly executionId: string;
  readonly eventType: string;
  /**
   * Jobs with the same target and ordering key are delivered one after the
   * other, in enqueue order: the aggregate ("<instance>/<type>/<id>").
   */
  readonly orderingKey: string;
  /** The JSON payload, sent as is. */
  readonly body: string;
  /** When the event happened; jobs older than the worker's max age are given up. */
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
  readonly id: string;
  /** This attempt's number, 1 for the first. */
  readonly attempt: number;
  /** Identifies this claim; a stale claim (after the lease ran out) cannot settle the job. */
  readonly lease: string;
  readonly enqueuedAt: Date;
  /** The error of the previous attempt, "" for the first. */
  readonly lastError: string;
}

/**
 * DeadJob is a job that was given up.
 */
export interface DeadJob extends EventJob {
  readonly id: string;
  readonly attempts: number;
  readonly error: string;
  readonly enqueuedAt: Date;
  readonly diedAt: Date;
}

/**
 * ListDeadOptions configures EventQueue.listDead.
 */
export interface ListDeadOptions {
  /** Only this instance's dead jobs ("" for the default instance), default those of every instance. */
  readonly instanceId?: string;
  /** At most this many, default 100. */
  readonly limit?: number;
}

/**
 * EventQueue holds event deliveries until they succeed or are given up. Every
 * implementation passes the shared contract suite (test/event-queue-contract.ts).
 */
export interface EventQueue {
  /** enqueue adds jobs, all or none, in order. */
  enqueue(jobs: readonly EventJob[]): Promise<void>;
  /**
   * claim leases up to `limit` jobs that are due. Only the oldest unsettled job
   * of each (target, ordering key) can be claimed, so deliveries of one
   * aggregate to one target happen one at a time, in order. The lease lasts
   * the job's timeoutMs plus `graceMs`.
   */
  claim(limit: number, graceMs: number): Promise<QueuedJob[]>;
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
  /** pending counts the jobs not yet settled (due, scheduled or leased). */
  pending(): Promise<number>;
  /** watch calls `listener` when jobs may have become claimable (enqueued here or elsewhere). */
  watch(listener: () => void): () => void;
  close(): Promise<void>;
}
