import pg from "pg";
import type { Logger } from "../logger.js";
import { connectTimeoutMs } from "./connection.js";

/** Backoff of LISTEN reconnects: first delay, doubling up to the max, with jitter. */
const reconnectMinMs = 100;
const reconnectMaxMs = 5_000;
/** A LISTEN connection that lasted this long resets the backoff. */
const stableAfterMs = 30_000;
/** How often the LISTEN connection is checked with a query, and how long the check may take. */
const heartbeatIntervalMs = 10_000;
const heartbeatTimeoutMs = 5_000;

/**
 * PostgresListenerOptions configures createPostgresListener.
 */
export interface PostgresListenerOptions {
  /**
   * Pool whose connection options the LISTEN connection uses. The connection
   * is a client of its own, not one of the pool's.
   */
  readonly pool: pg.Pool;
  /** Channel to LISTEN on; no default. */
  readonly channel: string;
  /**
   * What follows the pool's application_name (default "connect-actions") in
   * the application_name of the LISTEN connection. Default "listener".
   */
  readonly role?: string;
  /** Where lost connections and reconnects are logged; no default. */
  readonly logger: Logger;
  /** Component name that starts every log message, for example "postgres store"; no default. */
  readonly component: string;
  /** Attributes of every log entry, after `error`. Default `{ channel }`. */
  readonly logAttributes?: Readonly<Record<string, unknown>>;
  /** onNotify is called with the payload of every notification on the channel. */
  readonly onNotify: (payload: string | undefined) => void;
  /**
   * onLost is called when an established connection is found lost (before
   * reconnecting), since notifications are missed from then on until
   * onReconnect. Default: nothing.
   */
  readonly onLost?: () => void;
  /**
   * onReconnect is called once the connection is restored after it was lost,
   * since notifications may have been missed meanwhile. Default: nothing.
   */
  readonly onReconnect?: () => void;
}

/**
 * PostgresListener is a LISTEN connection that stays up (see
 * createPostgresListener).
 */
export interface PostgresListener {
  /**
   * pid returns the backend process ID of the connection (see
   * pg_stat_activity), or undefined while it is reconnecting or after close.
   */
  pid(): number | undefined;
  /** close ends the connection and stops reconnecting; calling it again is harmless. */
  close(): Promise<void>;
}

interface Listening {
  readonly pid: number;
  readonly heartbeat: NodeJS.Timeout;
  /** When the connection was set up, in epoch milliseconds. */
  readonly since: number;
  /** end closes the connection without reconnecting. */
  end(): Promise<void>;
}

/**
 * createPostgresListener opens a dedicated connection, created with the
 * pool's options plus TCP keep-alive and a connection timeout (the pool's, or
 * 10 s), and LISTENs on the channel. It resolves once notifications flow, and
 * rejects with the driver's error when the connection cannot be set up.
 *
 * The connection is checked with a query every 10 s; one that fails, or
 * gives no answer within 5 s, counts as lost. A lost connection is logged
 * with a warning and reopened after a backoff that starts at 100 ms and
 * doubles up to 5 s, each delay drawn between half of it and all of it; the
 * backoff goes on from where it was unless the lost connection had lasted
 * 30 s, so that one dying right after every reconnect is not reopened in a
 * tight loop. Once reopened, it logs that and calls onReconnect. The
 * heartbeat keeps no process alive; close() stops the reconnecting too.
 */
export async function createPostgresListener(options: PostgresListenerOptions): Promise<PostgresListener> {
  const { pool, channel, logger, component, onNotify, onReconnect } = options;
  const attributes = options.logAttributes ?? { channel };
  const config: pg.ClientConfig = {
    ...pool.options,
    keepAlive: true,
    connectionTimeoutMillis: pool.options.connectionTimeoutMillis || connectTimeoutMs,
    application_name: `${pool.options.application_name ?? "connect-actions"} ${options.role ?? "listener"}`,
  };
  let closed = false;
  let closing: Promise<void> | undefined;
  let listening: Listening | undefined;
  let attempt: Promise<void> | undefined; // a reconnection attempt in flight, never rejects
  let retryTimer: NodeJS.Timeout | undefined;
  let failures = 0;

  const onNotification = (message: pg.Notification) => {
    if (message.channel !== channel) return;
    onNotify(message.payload);
  };

  /**
   * listen opens a LISTEN connection. It resolves once notifications flow,
   * and rejects when the connection could not be set up.
   */
  const listen = async (reconnecting: boolean): Promise<void> => {
    const client = new pg.Client(config);
    let up: Listening | undefined;
    let gone = false;
    let ending: Promise<void> | undefined;
    const end = () => (ending ??= client.end().catch(() => {}));
    const lost = (error?: unknown) => {
      if (gone) return;
      gone = true;
      if (up !== undefined) clearInterval(up.heartbeat);
      if (listening !== undefined && listening === up) listening = undefined;
      void end();
      if (up !== undefined && !closed) {
        // Back off from where the last attempts left off, unless the
        // connection had been fine for a while: one that dies right after
        // every reconnect must not be reopened in a tight loop.
        if (Date.now() - up.since >= stableAfterMs) failures = 0;
        logger.warn(`${component}: lost the LISTEN connection, reconnecting`, { error, ...attributes });
        scheduleReconnect();
        options.onLost?.();
      }
    };
    client.on("error", lost);
    client.on("end", () => lost(new Error("connection ended")));
    client.on("notification", onNotification);
    let pid: number;
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      const { rows } = await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      pid = Number(rows[0]?.pid);
      if (gone) throw new Error("connection ended");
    } catch (error) {
      lost(error);
      throw error;
    }
    if (closed) {
      lost();
      await end();
      return;
    }
    const heartbeat = setInterval(() => {
      // A connection that silently went away is noticed here; ending it
      // while the query is pending destroys the socket.
      const timer = setTimeout(() => lost(new Error(`heartbeat got no answer within ${heartbeatTimeoutMs} ms`)), heartbeatTimeoutMs);
      timer.unref();
      client.query("SELECT 1").then(
        () => clearTimeout(timer),
        (error: unknown) => {
          clearTimeout(timer);
          lost(error);
        },
      );
    }, heartbeatIntervalMs);
    heartbeat.unref();
    up = {
      pid,
      heartbeat,
      since: Date.now(),
      end: () => {
        gone = true;
        clearInterval(heartbeat);
        return end();
      },
    };
    listening = up;
    if (reconnecting) {
      logger.info(`${component}: LISTEN connection restored`, { ...attributes });
      onReconnect?.();
    }
  };

  const scheduleReconnect = () => {
    if (closed || retryTimer !== undefined) return;
    const ceiling = Math.min(reconnectMaxMs, reconnectMinMs * 2 ** failures);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    failures++;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      if (closed) return;
      attempt = listen(true).then(
        () => {
          attempt = undefined;
        },
        (error: unknown) => {
          attempt = undefined;
          if (closed) return;
          logger.warn(`${component}: could not restore the LISTEN connection`, { error, ...attributes });
          scheduleReconnect();
        },
      );
    }, delay);
  };

  await listen(false);

  return {
    pid() {
      return listening?.pid;
    },
    close() {
      closing ??= (async () => {
        closed = true;
        if (retryTimer !== undefined) {
          clearTimeout(retryTimer);
          retryTimer = undefined;
        }
        await attempt;
        const current = listening;
        listening = undefined;
        if (current !== undefined) await current.end();
      })();
      return closing;
    },
  };
}
