// Fairness across instances (tenants) end to end: the async (fired) target slots are shared by instance
// first, then by target, so an instance whose targets hang cannot starve another instance's targets.
import http from "node:http";
import net from "node:net";
import { createClient } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import type { TargetCallRecord } from "../src/dispatch/target-dispatcher.js";
import { silentLogger } from "../src/logger.js";
import { listenCleartext } from "../src/sample/cleartext-server.js";
import { createUserService } from "../src/sample/user-service.js";
import { createActions } from "../src/setup.js";
import { createMemoryStore } from "../src/store/memory-store.js";

const addHuman = "/zitadel.user.v2.UserService/AddHumanUser";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A target that accepts connections and never answers; closing it ends them. */
async function hangingTarget() {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  cleanups.push(close);
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`, accepted: () => accepted, close };
}

/** A target that answers 200 at once and counts the calls. */
async function healthyTarget() {
  let received = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      received++;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/ok`, received: () => received };
}

describe("async target slots across instances", () => {
  it("lets an instance whose targets all hang hold only its share: another instance's calls all go through", async () => {
    const records: TargetCallRecord[] = [];
    // Default limits: 64 async calls at once, 48 per instance, 36 per target.
    const actions = createActions({
      store: createMemoryStore(),
      resolveInstance: (req) => req.header.get("x-instance") ?? "",
      worker: false,
      logger: silentLogger,
      dispatcher: { onCall: (r) => records.push(r) },
    });
    const handler = connectNodeAdapter({
      routes: (router) => router.service(UserService, createUserService()),
      interceptors: [actions.interceptor],
    });
    const listener = await listenCleartext(handler);
    const hanging = [await hangingTarget(), await hangingTarget(), await hangingTarget()];
    const healthy = await healthyTarget();
    cleanups.push(async () => {
      await listener.close();
      // The hanging calls fail at once when their targets go away, so close need not wait 60 s.
      for (const h of hanging) await h.close();
      await actions.close();
    });
    const input = { type: "async" as const, interruptOnError: false, timeoutMs: 60_000 };
    const a = actions.store.forInstance("a");
    const stuck = [];
    for (const [i, h] of hanging.entries()) stuck.push(await a.createTarget({ name: `hanging ${i}`, endpoint: h.url, ...input }));
    await a.setExecution({ type: "response", method: addHuman }, stuck.map((t) => ({ target: t.id })));
    const b = actions.store.forInstance("b");
    const fine = await b.createTarget({ name: "healthy", endpoint: healthy.url, ...input });
    await b.setExecution({ type: "response", method: addHuman }, [{ target: fine.id }]);

    const users = createClient(UserService, createConnectTransport({ baseUrl: `http://127.0.0.1:${listener.port}`, httpVersion: "1.1" }));
    let n = 0;
    const add = (instance: string) =>
      users.addHumanUser(
        { profile: { givenName: "G", familyName: "F" }, email: { email: `u${++n}@example.com` } },
        { headers: { "x-instance": instance } },
      );
    // Instance a first: 40 calls fire 120 async target calls, more than every slot there is.
    for (let i = 0; i < 40; i++) await add("a");
    await expect.poll(() => hanging.reduce((sum, h) => sum + h.accepted(), 0), { timeout: 10_000 }).toBe(48);
    for (let i = 0; i < 30; i++) await add("b");
    await expect.poll(() => healthy.received(), { timeout: 10_000 }).toBe(30);
    expect(records.filter((r) => r.instanceId === "b" && r.error === undefined)).toHaveLength(30);
    // Instance a holds 48 calls open, no more, its targets taking turns; its other 72 calls wait.
    expect(hanging.reduce((sum, h) => sum + h.accepted(), 0)).toBe(48);
    expect(hanging.map((h) => h.accepted())).toEqual([16, 16, 16]);
    expect(records.filter((r) => r.instanceId === "a")).toEqual([]);
  }, 60_000);

  it("drops calls of an instance beyond its share of the waiting room, and records why", async () => {
    const records: TargetCallRecord[] = [];
    const actions = createActions({
      store: createMemoryStore(),
      resolveInstance: (req) => req.header.get("x-instance") ?? "",
      worker: false,
      logger: silentLogger,
      dispatcher: {
        maxAsyncConcurrency: 2,
        maxAsyncQueue: 8,
        maxAsyncQueuePerInstance: 3,
        onCall: (r) => records.push(r),
      },
    });
    const handler = connectNodeAdapter({
      routes: (router) => router.service(UserService, createUserService()),
      interceptors: [actions.interceptor],
    });
    const listener = await listenCleartext(handler);
    const hanging = await hangingTarget();
    const healthy = await healthyTarget();
    cleanups.push(async () => {
      await listener.close();
      await hanging.close();
      await actions.close();
    });
    const input = { type: "async" as const, interruptOnError: false, timeoutMs: 60_000 };
    for (const [instance, endpoint] of [
      ["a", hanging.url],
      ["b", healthy.url],
    ] as const) {
      const view = actions.store.forInstance(instance);
      const t = await view.createTarget({ name: "t", endpoint, ...input });
      await view.setExecution({ type: "response", method: addHuman }, [{ target: t.id }]);
    }
    const users = createClient(UserService, createConnectTransport({ baseUrl: `http://127.0.0.1:${listener.port}`, httpVersion: "1.1" }));
    let n = 0;
    const add = (instance: string) =>
      users.addHumanUser(
        { profile: { givenName: "G", familyName: "F" }, email: { email: `w${++n}@example.com` } },
        { headers: { "x-instance": instance } },
      );
    // a: 1 running (its share of 2 slots), 3 waiting, the rest dropped; b still gets through.
    for (let i = 0; i < 10; i++) await add("a");
    await expect.poll(() => hanging.accepted(), { timeout: 10_000 }).toBe(1);
    const dropped = records.filter((r) => r.instanceId === "a");
    expect(dropped.length).toBe(6);
    for (const r of dropped) expect(r.error).toBe('async queue of instance "a" is full (3 calls waiting); call dropped');
    for (let i = 0; i < 5; i++) await add("b");
    await expect.poll(() => healthy.received(), { timeout: 10_000 }).toBe(5);
    expect(records.filter((r) => r.instanceId === "b").map((r) => r.error)).toEqual([undefined, undefined, undefined, undefined, undefined]);
  }, 60_000);
});
