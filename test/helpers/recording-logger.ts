import type { Logger } from "../../src/logger.js";

/** LogEntry is one call of a recording logger. */
export interface LogEntry {
  readonly level: string;
  readonly message: string;
  readonly attributes: Record<string, unknown> | undefined;
}

/**
 * recordingLogger returns a Logger that keeps every call, in order, in
 * `entries` (empty at first).
 */
export function recordingLogger(): Logger & { readonly entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const log = (level: string) => (message: string, attributes?: Record<string, unknown>) => {
    entries.push({ level, message, attributes });
  };
  return { entries, debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") };
}
