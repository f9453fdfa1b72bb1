import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";

/** Where Debian's chromium is; CHROMIUM_PATH overrides it. */
export const chromiumPath = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/**
 * The flags of every run: headless, no sandbox (tests run as root in CI), and nothing that talks to
 * the network or writes outside the fresh profile.
 */
export const chromiumFlags = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-dev-shm-usage",
  "--hide-scrollbars",
  "--mute-audio",
];

/**
 * A headless chromium driven by playwright-core over the DevTools protocol.
 */
export interface RunningChromium {
  readonly browser: Browser;
  /** The browser's output (stderr), for failure messages. */
  readonly output: () => string;
  close(): Promise<void>;
}

/**
 * startChromium starts Debian's chromium with chromiumFlags, a fresh --user-data-dir and
 * --remote-debugging-port=0, waits (up to `timeoutMs`, default 90 s: a loaded machine starts it
 * slowly) for the DevTools address it prints, and connects playwright-core to it.
 */
export async function startChromium(timeoutMs = 90_000): Promise<RunningChromium> {
  if (!existsSync(chromiumPath)) {
    throw new Error(`chromium not found at ${chromiumPath}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  const profile = await mkdtemp(join(tmpdir(), "console-chromium-"));
  const child: ChildProcess = spawn(
    chromiumPath,
    [...chromiumFlags, `--user-data-dir=${profile}`, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let output = "";
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
  };
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`chromium printed no DevTools address within ${timeoutMs} ms:\n${output}`)), timeoutMs);
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (chunk: string) => {
        output += chunk;
        const match = /DevTools listening on (ws:\/\/\S+)/.exec(output);
        if (match !== null) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`chromium exited (${code ?? signal}) before it listened:\n${output}`));
      });
      child.once("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
    const browser = await chromium.connectOverCDP(endpoint, { timeout: timeoutMs });
    return {
      browser,
      output: () => output,
      async close() {
        await browser.close().catch(() => undefined);
        await stop();
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
