import { createJsonLogger, type Logger } from "../logger.js";

/**
 * HealthCheck is one dependency a server needs to serve, for example its
 * database (see createPostgresHealthCheck of "connect-actions/postgres").
 */
export interface HealthCheck {
  /** The name in statuses and logs, for example "postgres". */
  readonly name: string;
  /**
   * check resolves when the dependency is usable and rejects otherwise. It
   * should give up when `signal` aborts (after HealthOptions.timeoutMs); one
   * that takes longer counts as failed anyway.
   */
  check(signal: AbortSignal): Promise<void>;
}

/**
 * HealthOptions configures createHealth.
 */
export interface HealthOptions {
  /** What readiness depends on, default nothing (ready as soon as created). */
  readonly checks?: readonly HealthCheck[];
  /** How often the checks run, default 2 000 ms. */
  readonly intervalMs?: number;
  /** How long a check may take before it counts as failed, default 2 000 ms. */
  readonly timeoutMs?: number;
  /** Where changes of readiness are logged, default JSON lines on stderr. */
  readonly logger?: Logger;
}

/**
 * CheckStatus is the outcome of the latest run of one HealthCheck.
 */
export interface CheckStatus {
  readonly ok: boolean;
  /** What went wrong, undefined when ok (or not checked yet). */
  readonly error: string | undefined;
  /** When the check last changed between ok and failed (or first ran). */
  readonly since: Date | undefined;
}

/**
 * HealthStatus is the state of a Health, as its handlers report it.
 */
export interface HealthStatus {
  /** The process runs and answers: false only after close(). */
  readonly live: boolean;
  /** Every check passed on its latest run, and the server is not draining. */
  readonly ready: boolean;
  /** drain() was called: the server is shutting down. */
  readonly draining: boolean;
  /** The latest outcome of each check, by name. */
  readonly checks: Readonly<Record<string, CheckStatus>>;
}

/**
 * Health tracks whether a server is alive (liveness) and should get traffic
 * (readiness), for orchestrators and load balancers; createHealthHandler and
 * createGrpcHealthService serve it.
 */
export interface Health {
  /** live tells whether the server runs: true until close(). */
  live(): boolean;
  /**
   * ready tells whether the server should get traffic: every check passed on
   * its latest run (none has run yet: false), and drain() was not called.
   */
  ready(): boolean;
  /** status returns live, ready, draining and the outcome of each check. */
  status(): HealthStatus;
  /** check runs the checks now and resolves ready() afterwards. */
  check(): Promise<boolean>;
  /**
   * drain makes ready() false for good: the server is shutting down and
   * should get no new traffic, while it finishes what it has. Checks stop.
   */
  drain(): void;
  /** watch calls `listener` with ready() whenever it changes; returns the function that stops it. */
  watch(listener: (ready: boolean) => void): () => void;
  /** close stops the checks; live() and ready() are false from then on. */
  close(): void;
}

/**
 * createHealth returns a Health that runs its checks at once and then every
 * intervalMs (on a timer that keeps no process alive), and logs each change
 * of readiness: "not ready" with the failed checks and their errors, and
 * "ready" once they pass again.
 */
export function createHealth(options: HealthOptions = {}): Health {
  const checks = options.checks ?? [];
  const intervalMs = options.intervalMs ?? 2000;
  const timeoutMs = options.timeoutMs ?? 2000;
  const logger = options.logger ?? createJsonLogger();
  const results = new Map<string, CheckStatus>(checks.map((c) => [c.name, { ok: false, error: undefined, since: undefined }]));
  const listeners = new Set<(ready: boolean) => void>();
  let checked = checks.length === 0;
  let draining = false;
  let closed = false;
  let running: Promise<boolean> | undefined;

  const isReady = () => !closed && !draining && checked && [...results.values()].every((r) => r.ok);
  let lastReady = isReady();
  const publish = () => {
    const now = isReady();
    if (now === lastReady) return;
    lastReady = now;
    for (const listener of [...listeners]) {
      try {
        listener(now);
      } catch {
        // A listener's failure is its own.
      }
    }
  };

  const runOne = async (c: HealthCheck): Promise<void> => {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new Error(`no answer within ${timeoutMs} ms`);
        reject(error); // first: this is the outcome, whatever the aborted check rejects with
        controller.abort(error);
      }, timeoutMs);
      timer.unref();
    });
    try {
      await Promise.race([c.check(controller.signal), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  const runAll = (): Promise<boolean> =>
    (running ??= (async () => {
      try {
        const outcomes = await Promise.all(
          checks.map(async (c) => {
            try {
              await runOne(c);
              return { name: c.name, error: undefined };
            } catch (e) {
              return { name: c.name, error: e instanceof Error ? e.message : String(e) };
            }
          }),
        );
        const wasReady = isReady();
        for (const { name, error } of outcomes) {
          const previous = results.get(name);
          const ok = error === undefined;
          results.set(name, { ok, error, since: previous?.since === undefined || previous.ok !== ok ? new Date() : previous.since });
        }
        const first = !checked;
        checked = true;
        const failed = outcomes.filter((o) => o.error !== undefined);
        if (!closed && !draining) {
          if (failed.length > 0 && (wasReady || first)) {
            logger.warn("not ready: a dependency is unavailable", { checks: Object.fromEntries(failed.map((f) => [f.name, f.error])) });
          } else if (failed.length === 0 && !wasReady && !first) {
            logger.info("ready again: every dependency answers", { checks: checks.map((c) => c.name) });
          }
        }
        publish();
        return isReady();
      } finally {
        running = undefined;
      }
    })());

  const timer = checks.length === 0 ? undefined : setInterval(() => void runAll(), intervalMs);
  timer?.unref();
  void runAll();

  return {
    live: () => !closed,
    ready: isReady,
    status() {
      return { live: !closed, ready: isReady(), draining, checks: Object.fromEntries(results) };
    },
    check: runAll,
    drain() {
      if (draining) return;
      draining = true;
      clearInterval(timer);
      publish();
    },
    watch(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    close() {
      closed = true;
      clearInterval(timer);
      publish();
      listeners.clear();
    },
  };
}
