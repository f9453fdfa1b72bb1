// The exchange's deadline and cancellation are checked by one shared timer: these tests hold it
// to its contract against real loopback servers (and check that it stops when idle).
import { execFile } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { promisify } from "node:util";
import { Agent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ExchangeError, exchange } from "../src/dispatch/http-exchange.js";

const run = promisify(execFile);

describe("exchange", () => {
  const agent = new Agent();
  let silent: net.Server;
  let silentOrigin: string;
  let echo: http.Server;
  let echoOrigin: string;
  const sockets = new Set<net.Socket>();
  /** Every connection that received a request, open or not. */
  const requested = new Set<net.Socket>();

  beforeAll(async () => {
    // Accepts connections, reads the request, never answers.
    silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      socket.on("data", () => requested.add(socket));
    });
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    silentOrigin = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    echo = http.createServer((req, res) => {
      echoed++;
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => res.end(Buffer.concat(chunks)));
    });
    await new Promise<void>((resolve) => echo.listen(0, "127.0.0.1", resolve));
    echoOrigin = `http://127.0.0.1:${(echo.address() as net.AddressInfo).port}`;
  });
  afterAll(async () => {
    await agent.close();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
    await new Promise((resolve) => echo.close(resolve));
  });

  const post = (origin: string, timeoutMs: number, signal?: AbortSignal) =>
    exchange(agent, { origin, path: "/", headers: { "content-type": "application/json" }, body: '{"a":1}', timeoutMs, maxBytes: 1024, signal });

  const failure = async (p: Promise<unknown>) => {
    const start = performance.now();
    const error = await p.then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ExchangeError);
    return { error: error as ExchangeError, ms: performance.now() - start };
  };
  /** echoed counts the requests the echo server received. */
  let echoed = 0;

  it("answers with the status and body", async () => {
    const answer = await post(echoOrigin, 5000);
    expect(answer.status).toBe(200);
    expect(answer.body.toString()).toBe('{"a":1}');
  });

  it("times out no earlier than its deadline, and closes the connection", async () => {
    // The server never answers: only the deadline can end the exchange.
    const { error, ms } = await failure(post(silentOrigin, 150));
    expect(error.reason).toBe("timeout");
    expect(error.message).toBe("timed out after 150 ms");
    expect(ms).toBeGreaterThanOrEqual(149);
    await expect.poll(() => sockets.size, { timeout: 10_000 }).toBe(0);
  });

  it("gives each of several exchanges in flight its own deadline", async () => {
    const results = await Promise.all([100, 300, 500].map((t) => failure(post(silentOrigin, t))));
    expect(results.map((r) => r.error.message)).toEqual(["timed out after 100 ms", "timed out after 300 ms", "timed out after 500 ms"]);
    // None ended before its own deadline (a shared deadline would end the later ones early).
    expect(results.map((r, i) => r.ms >= [100, 300, 500][i]! - 1)).toEqual([true, true, true]);
  });

  it("is cancelled when its signal aborts under way, and closes the connection", async () => {
    const controller = new AbortController();
    const before = new Set(requested);
    const pending = failure(post(silentOrigin, 60_000, controller.signal));
    await expect.poll(() => requested.size, { timeout: 2000 }).toBe(before.size + 1);
    const socket = [...requested].find((s) => !before.has(s))!;
    controller.abort();
    // Its deadline is a minute away: only the signal can have ended it.
    const { error } = await pending;
    expect(error.reason).toBe("canceled");
    await expect.poll(() => socket.destroyed, { timeout: 10_000 }).toBe(true);
  });

  it("does not start when its signal has already aborted", async () => {
    const before = echoed;
    const { error } = await failure(post(echoOrigin, 5000, AbortSignal.abort()));
    expect(error.reason).toBe("canceled");
    // No request was sent; one sent afterwards is the next the server sees.
    await post(echoOrigin, 5000);
    expect(echoed).toBe(before + 1);
  });

  it("leaves nothing armed: the process exits once the exchange is done", async () => {
    // The exchange had a 10 minute deadline: a timer left behind would hold the process that long, and the
    // run is killed after 2 minutes (a child process starts within seconds even on a busy machine).
    const { stdout } = await run(process.execPath, ["--import", "tsx", "test/fixtures/exchange-then-exit.ts"], { timeout: 120_000 });
    expect(stdout.trim()).toBe("200 ok");
  }, 150_000);
});
