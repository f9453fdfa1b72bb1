/**
 * Logger receives the structured logs of connect-actions: a message and flat
 * attributes (target, execution, status, durationMs, error, ...).
 */
export interface Logger {
  debug(message: string, attributes?: Record<string, unknown>): void;
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

/**
 * LogLevel orders the levels of a Logger; "silent" logs nothing.
 */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/**
 * JsonLoggerOptions configures createJsonLogger.
 */
export interface JsonLoggerOptions {
  /** Lowest level written, default "info". */
  readonly level?: LogLevel;
  /** Where lines go, default process.stderr. */
  readonly write?: (line: string) => void;
}

const levels: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/**
 * createJsonLogger returns a Logger that writes one JSON object per line:
 * `{"time","level","msg",...attributes}`. Errors in attributes are written as
 * their message.
 */
export function createJsonLogger(options: JsonLoggerOptions = {}): Logger {
  const min = levels[options.level ?? "info"];
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const log = (level: Exclude<LogLevel, "silent">) => (message: string, attributes?: Record<string, unknown>) => {
    if (levels[level] < min) return;
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level, msg: message };
    for (const [k, v] of Object.entries(attributes ?? {})) {
      entry[k] = v instanceof Error ? v.message : v;
    }
    write(JSON.stringify(entry));
  };
  return { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}

/**
 * silentLogger is a Logger that drops everything.
 */
export const silentLogger: Logger = createJsonLogger({ level: "silent" });
