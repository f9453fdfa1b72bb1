import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../..", import.meta.url));
const main = fileURLToPath(new URL("../../src/sample/main.ts", import.meta.url));

/** One JSON log line of the sample. */
export interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly [key: string]: unknown;
}

/**
 * SampleProcess is the sample server (`src/sample/main.ts`, as `npm start`
 * runs it) in a child process.
 */
export interface SampleProcess {
  readonly child: ChildProcess;
  /** The pid of the process signals go to (npm's with `viaNpm`). */
  readonly pid: number;
  readonly url: string;
  /** Its JSON log lines so far. */
  readonly logs: LogLine[];
  /** Everything it wrote to stderr so far. */
  stderr(): string;
  /** Resolves its exit code (or signal) once it exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** waitForLog resolves the first log line whose message starts with `prefix`. */
  waitForLog(prefix: string, timeoutMs?: number): Promise<LogLine>;
  /** kill sends SIGKILL unless it exited already (with `viaNpm`, to npm's whole process group). */
  kill(): void;
}

/**
 * spawnSample starts the sample with `env` (on top of PATH; PORT default 0,
 * LOG_LEVEL default info) and resolves once it listens. With `viaNpm`, it
 * runs `npm start` instead of node.
 */
export async function spawnSample(env: Record<string, string>, options: { viaNpm?: boolean } = {}): Promise<SampleProcess> {
  // npm runs in a process group of its own, so that kill() also reaches the server if npm cannot pass the signal on.
  const child = options.viaNpm
    ? spawn("npm", ["start", "--silent"], {
        cwd: root,
        env: { ...process.env, PORT: "0", LOG_LEVEL: "info", ...env },
        stdio: ["ignore", "ignore", "pipe"],
        detached: true,
      })
    : spawn(process.execPath, ["--import", "tsx", main], {
        cwd: root,
        env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_LEVEL: "info", ...env },
        stdio: ["ignore", "ignore", "pipe"],
      });
  const logs: LogLine[] = [];
  let text = "";
  let pending = "";
  const waiters = new Set<() => void>();
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    text += chunk;
    pending += chunk;
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (!line.startsWith("{")) continue;
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        // not a log line
      }
    }
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => {
      for (const w of [...waiters]) w();
      resolve({ code, signal });
    }),
  );
  const waitForLog = (prefix: string, timeoutMs = 60_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const line = logs.find((l) => l.msg.startsWith(prefix));
        if (line !== undefined) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(line);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(new Error(`the sample exited before logging "${prefix}":\n${text}`));
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no log "${prefix}" within ${timeoutMs} ms:\n${text}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  let listening: LogLine;
  try {
    listening = await waitForLog("sample server listening");
  } catch (error) {
    if (options.viaNpm) {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    } else child.kill("SIGKILL");
    throw error;
  }
  return {
    child,
    pid: child.pid!,
    url: String(listening.url),
    logs,
    stderr: () => text,
    exited,
    waitForLog,
    kill() {
      if (options.viaNpm) {
        try {
          process.kill(-child.pid!, "SIGKILL"); // the whole group: npm and the server it started
        } catch {
          // already gone
        }
      } else if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
      }
    },
  };
}
