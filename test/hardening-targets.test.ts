// Issue 5, "bad targets never hurt the service": targets that answer huge bodies, trickle,
// never answer, do not speak HTTP, answer garbage, redirect, cannot be reached, or answer
// before reading the request, each played by a real loopback server and called through a real
// intercepted server by a real Connect client. Every test checks what the client sees, what the
// dispatcher recorded, and (in afterEach) that the server still serves a normal RPC.
import http from "node:http";
import net from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Condition } from "../src/condition.js";
import { type Logger, silentLogger } from "../src/logger.js";
import { createTargetDispatcher, type TargetCallRecord } from "../src/dispatch/target-dispatcher.js";
import type { Target, TargetInput } from "../src/target.js";
import { addUser, humanOf, type InterceptedServer, startInterceptedServer } from "./helpers/intercepted-server.js";
import { createPrng } from "./helpers/prng.js";
import { clearStore } from "./helpers/clear-store.js";

const ADD = "/zitadel.user.v2.UserService/AddHumanUser";
const onAddRequest: Condition = { type: "request", method: ADD };
const MiB = 1024 * 1024;

/** A loopback TCP server that plays a target byte by byte. */
interface RawTarget {
  readonly url: string;
  /** Connections accepted so far. */
  accepted(): number;
  /** Connections still open. */
  open(): number;
  /** Resolves once every accepted connection is closed; rejects after `timeoutMs`. */
  allClosed(timeoutMs?: number): Promise<void>;
  /** Runs `fn` every `ms` while `socket` is open (and the target is not closed). */
  every(socket: net.Socket, ms: number, fn: () => void): void;
  close(): Promise<void>;
}

/** A loopback HTTP server that plays a target with Node's http module. */
interface HttpTarget {
  readonly url: string;
  /** Requests received so far, by path. */
  readonly received: string[];
  close(): Promise<void>;
}

const toClose: (() => Promise<void>)[] = [];

async function rawTarget(onConnection: (socket: net.Socket, target: RawTarget) => void): Promise<RawTarget> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let accepted = 0;
  let target: RawTarget;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    onConnection(socket, target);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  target = {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`,
    accepted: () => accepted,
    open: () => sockets.size,
    async allClosed(timeoutMs = 2000) {
      const deadline = performance.now() + timeoutMs;
      while (sockets.size > 0) {
        if (performance.now() > deadline) throw new Error(`${sockets.size} connection(s) still open after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    every(socket, ms, fn) {
      const timer = setInterval(() => {
        if (socket.destroyed || socket.writableEnded) {
          clearInterval(timer);
          timers.delete(timer);
          return;
        }
        fn();
      }, ms);
      timers.add(timer);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearInterval(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  toClose.push(target.close);
  return target;
}

async function httpTarget(handler: (req: http.IncomingMessage, res: http.ServerResponse, url: string) => void): Promise<HttpTarget> {
  const received: string[] = [];
  let url = "";
  const server = http.createServer((req, res) => {
    received.push(req.url ?? "");
    handler(req, res, url);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  toClose.push(close);
  return { url, received, close };
}

/** A port nothing listens on: one the kernel just gave out and that was closed again. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** The raw headers of a 200 answer with a body of `length` bytes. */
const okHead = (length: number, type = "application/json") =>
  `HTTP/1.1 200 OK\r\ncontent-type: ${type}\r\ncontent-length: ${length}\r\n\r\n`;

let server: InterceptedServer;

beforeAll(async () => {
  server = await startInterceptedServer();
});
afterAll(async () => {
  await server.close();
});
afterEach(async () => {
  await clearStore(server.store);
  // The server keeps serving: a normal RPC succeeds after every bad target.
  const client = server.client("connect");
  const { userId } = await client.addHumanUser(addUser("After"));
  expect(humanOf((await client.getUserByID({ userId })).user)?.profile?.givenName).toBe("After");
  for (const close of toClose.splice(0)) await close();
});

async function onAdd(endpoint: string, input: Partial<TargetInput> = {}, on: InterceptedServer = server): Promise<Target> {
  const t = await on.store.createTarget({
    name: `t-${Math.random().toString(36).slice(2)}`,
    type: "webhook",
    interruptOnError: true,
    endpoint,
    timeoutMs: 5000,
    ...input,
  });
  await on.store.setExecution(onAddRequest, [{ target: t.id }]);
  return t;
}

/** Calls AddHumanUser over Connect: the user ID, or the error. */
async function add(on: InterceptedServer = server, options: { timeoutMs?: number } = {}) {
  try {
    const { userId } = await on.client("connect").addHumanUser(addUser(), options);
    return { userId, error: undefined };
  } catch (e) {
    return { userId: undefined, error: ConnectError.from(e) };
  }
}

function recordsOf(t: Target, on: { records: TargetCallRecord[] } = server): TargetCallRecord[] {
  return on.records.filter((r) => r.targetId === t.id);
}

function expectExecutionFailed(error: ConnectError | undefined): void {
  expect(error).toBeInstanceOf(ConnectError);
  expect({ code: error!.code, message: error!.rawMessage }).toEqual({ code: Code.FailedPrecondition, message: "Execution failed" });
}

/** Serves a 50 MiB body as fast as the client reads it; `sent()` is what the client accepted so far. */
async function hugeTarget(total = 50 * MiB): Promise<RawTarget & { sent(): number }> {
  let sent = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const t = await rawTarget((socket) => {
    socket.once("data", () => {
      socket.write(okHead(total));
      const pump = () => {
        while (sent < total && !socket.destroyed) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once("drain", pump);
            return;
          }
        }
        socket.end();
      };
      pump();
    });
  });
  return Object.assign(t, { sent: () => sent });
}

describe("a target that answers a huge body", () => {
  it("fails an interrupting call at the 1 MiB cap, closing the connection long before 50 MiB are sent", async () => {
    const huge = await hugeTarget();
    const t = await onAdd(huge.url);
    const { error } = await add();
    expectExecutionFailed(error);
    const [record] = recordsOf(t);
    expect(record).toMatchObject({ status: 200, error: `target "${t.name}" answered more than ${MiB} bytes` });
    await huge.allClosed();
    // What the sender could push is the 1 MiB read plus what the loopback socket buffers hold.
    expect(huge.sent()).toBeLessThan(16 * MiB);
  });

  it("lets the RPC go on when the target does not interrupt", async () => {
    const huge = await hugeTarget();
    const t = await onAdd(huge.url, { interruptOnError: false });
    const { userId, error } = await add();
    expect(error).toBeUndefined();
    expect(userId).toMatch(/^\d+$/);
    expect(recordsOf(t)[0]?.error).toMatch(/answered more than 1048576 bytes/);
    await huge.allClosed();
  });

  it("drops a huge answer of an async target without touching the RPC", async () => {
    const huge = await hugeTarget();
    const t = await onAdd(huge.url, { type: "async", interruptOnError: false });
    const { error } = await add();
    expect(error).toBeUndefined();
    await server.dispatcher.idle();
    expect(recordsOf(t)).toEqual([expect.objectContaining({ async: true, status: 200, error: expect.stringMatching(/more than 1048576 bytes/) })]);
    await huge.allClosed();
  });

  it("accepts exactly 1 MiB and refuses one byte more, with or without a content-length", async () => {
    const target = await httpTarget((req, res) => {
      req.resume();
      const [, kind, size] = (req.url ?? "").split("/");
      const body = Buffer.alloc(Number(size), 0x20);
      if (kind === "sized") res.writeHead(200, { "content-length": body.length });
      else res.writeHead(200); // chunked
      res.end(body);
    });
    for (const kind of ["sized", "chunked"]) {
      const fits = await onAdd(`${target.url}/${kind}/${MiB}`);
      expect((await add()).error, kind).toBeUndefined();
      expect(recordsOf(fits)[0]).toMatchObject({ status: 200, error: undefined });
      const over = await onAdd(`${target.url}/${kind}/${MiB + 1}`);
      expectExecutionFailed((await add()).error);
      expect(recordsOf(over)[0]?.error, kind).toBe(`target "${over.name}" answered more than ${MiB} bytes`);
    }
  });

  it("honours a custom maxResponseBytes", async () => {
    const records: TargetCallRecord[] = [];
    const dispatcher = createTargetDispatcher({ logger: silentLogger, maxResponseBytes: 1000, onCall: (r) => records.push(r) });
    const small = await startInterceptedServer({ dispatcher });
    try {
      const target = await httpTarget((req, res) => {
        req.resume();
        res.end(Buffer.alloc(Number(req.url!.slice(1)), 0x20));
      });
      const fits = await onAdd(`${target.url}/1000`, {}, small);
      expect((await add(small)).error).toBeUndefined();
      const over = await onAdd(`${target.url}/1001`, {}, small);
      expectExecutionFailed((await add(small)).error);
      expect(recordsOf(fits, { records })[0]?.error).toBeUndefined();
      expect(recordsOf(over, { records })[0]?.error).toBe(`target "${over.name}" answered more than 1000 bytes`);
      // The huge target is cut at 1000 bytes too.
      const huge = await hugeTarget();
      const cut = await onAdd(huge.url, {}, small);
      expectExecutionFailed((await add(small)).error);
      expect(recordsOf(cut, { records })[0]?.error).toMatch(/more than 1000 bytes/);
      await huge.allClosed();
    } finally {
      await small.close();
    }
  });
});

/** Slow targets, each never finishing its answer. */
const slowTargets: [string, (socket: net.Socket, target: RawTarget) => void, number][] = [
  ["accepts the connection and never answers", (socket) => socket.resume(), 0],
  [
    "trickles its headers, 1 byte every 100 ms",
    (socket, t) =>
      socket.once("data", () => {
        socket.write("HTTP/1.1 200 OK\r\nx-slow: ");
        t.every(socket, 100, () => socket.write("a"));
      }),
    0,
  ],
  [
    "sends its headers, then trickles the body 1 byte every 100 ms forever",
    (socket, t) =>
      socket.once("data", () => {
        socket.write(okHead(100 * MiB));
        t.every(socket, 100, () => socket.write(" "));
      }),
    200,
  ],
];

describe("slow targets: the target's timeout bounds the whole call", () => {
  it.each(slowTargets)("a target that %s fails an interrupting RPC at its 300 ms timeout", async (_, play, status) => {
    const slow = await rawTarget(play);
    const t = await onAdd(slow.url, { timeoutMs: 300 });
    const { error } = await add();
    expectExecutionFailed(error);
    expect(recordsOf(t)).toEqual([expect.objectContaining({ status, error: `target "${t.name}" timed out after 300 ms` })]);
    // The connection is given up, not left open to the slow target.
    await slow.allClosed();
  });

  it.each(slowTargets)("a target that %s lets a non-interrupting RPC go on at its 300 ms timeout", async (_, play) => {
    const slow = await rawTarget(play);
    const t = await onAdd(slow.url, { timeoutMs: 300, interruptOnError: false });
    const { userId, error } = await add();
    expect(error).toBeUndefined();
    expect(userId).toMatch(/^\d+$/);
    expect(recordsOf(t)[0]?.error).toBe(`target "${t.name}" timed out after 300 ms`);
    await slow.allClosed();
  });

  it("cancels the target call when the client's deadline ends first", async () => {
    const slow = await rawTarget((socket) => socket.resume());
    const t = await onAdd(slow.url, { timeoutMs: 20_000 });
    const { error } = await add(server, { timeoutMs: 300 });
    expect(error?.code).toBe(Code.DeadlineExceeded);
    await slow.allClosed();
    await expect.poll(() => recordsOf(t)[0]?.error, { timeout: 2000 }).toBe(`target "${t.name}" was cancelled with the RPC`);
  });

  it("does not hold up other RPCs while twenty calls wait for a silent target", async () => {
    const silent = await rawTarget((socket) => socket.resume());
    await onAdd(silent.url, { timeoutMs: 1500 });
    let settled = 0;
    const stuck = Array.from({ length: 20 }, () => add().finally(() => settled++));
    await expect.poll(() => silent.accepted(), { timeout: 2000 }).toBe(20);
    // ListUsers has no execution: it is answered while all twenty calls still wait.
    await server.client("connect").listUsers({});
    expect(settled).toBe(0);
    for (const { error } of await Promise.all(stuck)) expectExecutionFailed(error);
  });
});

const garbageBytes = (seed: number, n: number) => Buffer.concat([Buffer.from([0xff]), createPrng(seed).bytes(n)]);

/** Targets that do not speak HTTP, or stop speaking it halfway, and the error each leaves in the record. */
const brokenTargets: [string, (socket: net.Socket, target: RawTarget) => void, RegExp][] = [
  ["writes random bytes and closes", (s) => s.once("data", () => s.end(garbageBytes(1, 4096))), /could not be reached: .*HTTP\/1\.1 protocol/],
  [
    "writes random bytes forever without closing",
    (s, t) => s.once("data", () => t.every(s, 10, () => s.write(garbageBytes(2, 512)))),
    /could not be reached: .*HTTP\/1\.1 protocol/,
  ],
  ["closes the connection without a byte", (s) => s.once("data", () => s.end()), /could not be reached: .*other side closed/],
  [
    "closes the connection in the middle of the body",
    (s) => s.once("data", () => s.end(okHead(100) + '{"half":')),
    /could not be reached: .*other side closed/,
  ],
  ["resets the connection on the request", (s) => s.once("data", () => s.resetAndDestroy()), /could not be reached: ECONNRESET/],
  [
    "resets the connection in the middle of the body",
    (s) =>
      s.once("data", () => {
        s.write(okHead(100) + "{");
        setTimeout(() => s.resetAndDestroy(), 50);
      }),
    /could not be reached: ECONNRESET/,
  ],
  [
    "answers headers larger than 16 KiB",
    (s) => s.once("data", () => s.end(`HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(64 * 1024)}\r\n\r\n`)),
    /could not be reached: UND_ERR_HEADERS_OVERFLOW/,
  ],
  [
    "answers a negative content-length",
    (s) => s.once("data", () => s.end("HTTP/1.1 200 OK\r\ncontent-length: -5\r\n\r\n{}")),
    /could not be reached: .*HTTP\/1\.1 protocol \(Invalid character in Content-Length\)/,
  ],
  ["answers a status line of garbage", (s) => s.once("data", () => s.end("HTTP/1.1 OK\r\n\r\n")), /could not be reached: .*HTTP\/1\.1 protocol \(Invalid status code\)/],
];

describe("targets that do not speak HTTP", () => {
  it.each(brokenTargets)("a target that %s fails the RPC with Execution failed", async (_, play, detail) => {
    const broken = await rawTarget(play);
    const t = await onAdd(broken.url);
    const { error } = await add();
    expectExecutionFailed(error);
    const [record] = recordsOf(t);
    expect(record?.error).toMatch(detail);
    expect(record?.error).toMatch(new RegExp(`^target "${t.name}" `));
    await broken.allClosed();
  });

  it("goes on when a non-interrupting target writes garbage", async () => {
    const broken = await rawTarget(brokenTargets[0]![1]);
    const t = await onAdd(broken.url, { interruptOnError: false });
    expect((await add()).error).toBeUndefined();
    expect(recordsOf(t)[0]?.error).toMatch(/could not be reached/);
  });
});

describe("a target that answers binary garbage with 200", () => {
  const binary = () => rawTarget((s) => s.once("data", () => {
    const body = garbageBytes(3, 64 * 1024);
    s.end(Buffer.concat([Buffer.from(okHead(body.length, "application/octet-stream")), body]));
  }));

  it("fails a call target: the body is not JSON", async () => {
    const t = await onAdd((await binary()).url, { type: "call" });
    expectExecutionFailed((await add()).error);
    expect(recordsOf(t)).toEqual([expect.objectContaining({ status: 200, error: `target "${t.name}" answered a body that is not JSON` })]);
  });

  it("is fine for a webhook, whose body does not count", async () => {
    const t = await onAdd((await binary()).url, { type: "webhook" });
    const { userId, error } = await add();
    expect(error).toBeUndefined();
    expect(userId).toMatch(/^\d+$/);
    expect(recordsOf(t)).toEqual([expect.objectContaining({ status: 200, error: undefined })]);
  });
});

describe("a target that redirects", () => {
  it.each([301, 302, 307, 308])("answering %i fails the call and the redirect is never followed", async (status) => {
    const target = await httpTarget((req, res, url) => {
      req.resume();
      if (req.url === "/landing") {
        res.end();
        return;
      }
      res.writeHead(status, { location: `${url}/landing` });
      res.end();
    });
    const t = await onAdd(`${target.url}/moved`);
    expectExecutionFailed((await add()).error);
    expect(recordsOf(t)).toEqual([expect.objectContaining({ status, error: `target "${t.name}" answered status ${status}` })]);
    expect(target.received).toEqual(["/moved"]);
  });
});

describe("a target that cannot be reached", () => {
  it("fails with the connection error, not its 10 s timeout, when the connection is refused", async () => {
    const port = await closedPort();
    const t = await onAdd(`http://127.0.0.1:${port}/hook`, { timeoutMs: 10_000 });
    const { error } = await add();
    expectExecutionFailed(error);
    expect(recordsOf(t)).toEqual([
      expect.objectContaining({ status: 0, error: `target "${t.name}" could not be reached: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:${port}` }),
    ]);
  });

  it("fails with a clear error, not its timeout, when the host name does not resolve", async () => {
    const t = await onAdd("http://no-such-host.invalid/hook", { timeoutMs: 10_000 });
    const { error } = await add();
    expectExecutionFailed(error);
    expect(recordsOf(t)[0]?.error).toMatch(/^target "t-\w+" could not be reached: ENOTFOUND .*no-such-host\.invalid/);
  });

  it("goes on when a non-interrupting target's host does not resolve", async () => {
    const t = await onAdd("http://no-such-host.invalid/hook", { timeoutMs: 10_000, interruptOnError: false });
    expect((await add()).error).toBeUndefined();
    expect(recordsOf(t)[0]?.error).toMatch(/ENOTFOUND/);
  });
});

describe("async targets while the async queue is full", () => {
  it("drops and records the calls beyond the queue, and never delays an RPC", async () => {
    const records: TargetCallRecord[] = [];
    const logs: { message: string; attributes?: Record<string, unknown> }[] = [];
    const logger: Logger = { ...silentLogger, warn: (message, attributes) => logs.push({ message, attributes }) };
    // One instance may fill the whole waiting room here (the default is three quarters of it).
    const dispatcher = createTargetDispatcher({
      logger,
      maxAsyncConcurrency: 1,
      maxAsyncQueue: 2,
      maxAsyncQueuePerInstance: 2,
      onCall: (r) => records.push(r),
    });
    const busy = await startInterceptedServer({ dispatcher, logger });
    try {
      // The target holds every call until released.
      const held: http.ServerResponse[] = [];
      let releaseAll = false;
      const target = await httpTarget((req, res) => {
        req.resume();
        if (releaseAll) res.end();
        else held.push(res);
      });
      const t = await onAdd(target.url, { type: "async", interruptOnError: false, timeoutMs: 20_000 }, busy);
      // Ten RPCs, one after the other: each returns while the first async call is still held,
      // so none of them waited for the queue.
      for (let i = 0; i < 10; i++) {
        expect((await add(busy)).error).toBeUndefined();
      }
      await expect.poll(() => held.length).toBe(1);
      const dropped = recordsOf(t, { records });
      expect(dropped).toHaveLength(7);
      for (const r of dropped) {
        expect(r).toMatchObject({ async: true, status: 0, error: "async queue is full (2 calls waiting); call dropped" });
      }
      expect(logs.filter((l) => l.message === "async target dropped")).toHaveLength(7);
      // Once released, the running call and the two waiting ones are delivered.
      releaseAll = true;
      for (const res of held.splice(0)) res.end();
      await dispatcher.idle();
      expect(target.received).toHaveLength(3);
      expect(recordsOf(t, { records }).filter((r) => r.error === undefined)).toHaveLength(3);
      // With room in the queue again, new calls are taken.
      expect((await add(busy)).error).toBeUndefined();
      await dispatcher.idle();
      expect(target.received).toHaveLength(4);
    } finally {
      await busy.close();
    }
  });
});

describe("async targets while one of them hangs", () => {
  it("lets a hanging target hold only its share of the async slots: another target's calls all go through", async () => {
    const records: TargetCallRecord[] = [];
    // Default limits: 64 async calls at once, 48 per instance, 36 per target.
    const dispatcher = createTargetDispatcher({ logger: silentLogger, onCall: (r) => records.push(r) });
    const busy = await startInterceptedServer({ dispatcher, logger: silentLogger });
    const hanging = await rawTarget((socket) => socket.resume());
    try {
      const healthy = await httpTarget((req, res) => {
        req.resume();
        req.on("end", () => res.end());
      });
      const input = { type: "async" as const, interruptOnError: false, timeoutMs: 20_000 };
      const stuck = await busy.store.createTarget({ name: "hanging", endpoint: hanging.url, ...input });
      const fine = await busy.store.createTarget({ name: "healthy", endpoint: `${healthy.url}/ok`, ...input });
      // The hanging target first: in one shared FIFO its calls would take every slot for 20 s.
      await busy.store.setExecution(onAddRequest, [{ target: stuck.id }, { target: fine.id }]);
      for (let i = 0; i < 80; i++) {
        expect((await add(busy)).error).toBeUndefined();
      }
      await expect.poll(() => healthy.received.length, { timeout: 5000 }).toBe(80);
      expect(recordsOf(fine, { records }).filter((r) => r.error === undefined)).toHaveLength(80);
      // The hanging target holds 36 calls open, no more; its other 44 wait their turn.
      expect(hanging.accepted()).toBe(36);
      expect(recordsOf(stuck, { records })).toEqual([]);
    } finally {
      // Its calls then fail at once instead of waiting 20 s each, and the dispatcher can close.
      await hanging.close();
      await busy.close();
    }
  }, 30_000);
});

describe("a target that answers before reading the request body", () => {
  it("is a success for a webhook answering at once over Node's http server", async () => {
    const target = await httpTarget((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
    const t = await onAdd(`${target.url}/early`);
    expect((await add()).error).toBeUndefined();
    expect(recordsOf(t)).toEqual([expect.objectContaining({ status: 200, error: undefined })]);
  });

  it("takes the early answer to an 8 MiB body, does not reuse the half-written connection and closes it when idle", async () => {
    // Answers on the first bytes, then stops reading: the rest of the body cannot be sent.
    const received = new Map<net.Socket, number>();
    const early = await rawTarget((socket) =>
      socket.once("data", (chunk: Buffer) => {
        socket.pause();
        received.set(socket, chunk.length);
        socket.on("data", (more: Buffer) => received.set(socket, received.get(socket)! + more.length));
        socket.write(`${okHead(11)}{"ok":true}`);
      }),
    );
    const dispatcher = createTargetDispatcher({ logger: silentLogger, keepAliveTimeoutMs: 300 });
    try {
      const target: Target = { ...(await onAdd(early.url, { type: "call" })) };
      const body = JSON.stringify({ padding: "x".repeat(8 * MiB) });
      for (let i = 0; i < 2; i++) {
        expect(await dispatcher.call({ target, executionId: "request", body })).toEqual({ status: 200, json: { ok: true } });
      }
      // The second call needed a connection of its own: the half-written one was busy.
      expect(early.accepted()).toBe(2);
      // The half-written connections are not kept beyond the keep-alive timeout: reading again
      // after it, the target finds their end before the whole body.
      await new Promise((r) => setTimeout(r, 1000));
      for (const socket of received.keys()) socket.resume();
      await early.allClosed();
      for (const bytes of received.values()) expect(bytes).toBeLessThan(body.length);
    } finally {
      await dispatcher.close();
    }
  });
});
