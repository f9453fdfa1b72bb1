// The processes the benches start: a bench file run by Node under tsx.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL(".", import.meta.url));

/** BenchChildOptions configures startBenchChild. */
export interface BenchChildOptions {
  /** Node's own flags before "--import tsx", default none. */
  readonly nodeFlags?: readonly string[];
  /** Open an IPC channel to the child (process.send), default false. */
  readonly ipc?: boolean;
}

/**
 * startBenchChild runs bench/<file> with `argv` and resolves once it has printed its first line:
 * `line`, trimmed, and `ports`, the line read as space-separated numbers (what servers print).
 */
export async function startBenchChild(
  file: string,
  argv: readonly string[] = [],
  options: BenchChildOptions = {},
): Promise<{ line: string; ports: number[]; child: ChildProcess }> {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), "--import", "tsx", here + file, ...argv], {
    stdio: options.ipc === true ? ["ignore", "pipe", "inherit", "ipc"] : ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await once(lines, "line")) as [string];
  return { line: line.trim(), ports: line.trim().split(" ").map(Number), child };
}
