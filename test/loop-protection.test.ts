// Issue 14: a target whose endpoint leads back to an intercepted method (directly, or through a proxy that
// forwards headers) must not loop: one client request causes a small, fixed number of target calls.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hopHeader } from "../src/dispatch/hop.js";
import { createTargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { createFunctionRunner } from "../src/functions/function-runner.js";
import { silentLogger } from "../src/logger.js";
import { createExecutionPlanner } from "../src/plan/execution-planner.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { startTargetServer } from "./helpers/target-server.js";
import { waitFor } from "./helpers/wait.js";
import { startTcpProxy, type TcpProxy } from "./fixtures/tcp-proxy.js";
import { addUser } from "./helpers/intercepted-server.js";
import { useTestDatabase } from "./helpers/postgres.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

const addHumanUser = "/zitadel.user.v2.UserService/AddHumanUser";

/** startHeaderProxy starts an HTTP proxy that forwards every request, headers included, to `upstream`. */
async function startHeaderProxy(upstream: string): Promise<{ url: string; forwarded: number; close(): Promise<void> }> {
  const target = new URL(upstream);
  const state = { forwarded: 0 };
  const server = http.createServer((req, res) => {
    state.forwarded++;
    const out = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on("error", () => res.destroy());
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get forwarded() {
      return state.forwarded;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function errorOf(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("expected the call to fail");
}

const db = useTestDatabase();

describe.each(["memory", "postgres"] as const)("loop protection (%s)", (backend) => {
  let h: SampleHarness;
  let proxy: TcpProxy;
  let headerProxy: Awaited<ReturnType<typeof startHeaderProxy>>;
  beforeAll(async () => {
    h = await startSampleHarness(backend === "postgres" ? { databaseUrl: db.url } : {});
    const url = new URL(h.server.url);
    proxy = await startTcpProxy(url.hostname, Number(url.port));
    headerProxy = await startHeaderProxy(h.server.url);
  });
  afterAll(async () => {
    await headerProxy?.close();
    await proxy?.close();
    await h?.close();
  });

  /** loopOnce points a target of `type` at `endpoint`, sets it on AddHumanUser and makes one client call. */
  const loopOnce = async (name: string, endpoint: string, type: "restWebhook" | "restCall" | "restAsync", phase: "request" | "response") => {
    const admin = h.actions();
    const value = type === "restAsync" ? {} : { interruptOnError: true };
    const { id } = await admin.createTarget({ name, targetType: { case: type, value } as never, endpoint, timeout: { seconds: 10n } });
    const condition = { conditionType: { case: phase, value: { condition: { case: "method" as const, value: addHumanUser } } } };
    await admin.setExecution({ condition, targets: [id] });
    const before = h.records.filter((r) => r.targetId === id).length;
    const answer = await h.users().addHumanUser(addUser(name)).then(
      () => "ok" as const,
      (e: unknown) => ConnectError.from(e),
    );
    await h.server.dispatcher.idle();
    await admin.setExecution({ condition, targets: [] });
    return { id, answer, calls: h.records.filter((r) => r.targetId === id).length - before };
  };

  it.each([
    ["directly", () => `${h.server.url}${addHumanUser}`],
    ["through a TCP proxy", () => `http://127.0.0.1:${proxy.port}${addHumanUser}`],
    ["through an HTTP proxy that copies headers", () => `${headerProxy.url}${addHumanUser}`],
  ])("stops a webhook that calls its own method %s after one call per client request", async (how, endpoint) => {
    const { answer, calls, id } = await loopOnce(`loop-${backend}-${how.replaceAll(" ", "-")}`, endpoint(), "restWebhook", "request");
    // The client request made exactly one target call, whose request was refused.
    expect(calls).toBe(1);
    expect(answer).toBeInstanceOf(ConnectError);
    expect((answer as ConnectError).code).toBe(Code.FailedPrecondition);
    const refused = h.records.filter((r) => r.targetId === id).every((r) => r.status === 400);
    expect(refused).toBe(true);
    expect(h.logs.some((l) => l.message.startsWith("request refused: it was made by a target call"))).toBe(true);
  });

  it("stops call targets in the response phase and async targets the same way", async () => {
    const call = await loopOnce(`loop-${backend}-call`, `${h.server.url}${addHumanUser}`, "restCall", "response");
    expect(call.calls).toBe(1);
    const fired = await loopOnce(`loop-${backend}-async`, `${h.server.url}${addHumanUser}`, "restAsync", "request");
    // Async targets never fail the RPC: it is the refused request that ends the loop.
    expect(fired.answer).toBe("ok");
    expect(fired.calls).toBe(1);
  });

  it("marks target calls with the hop header, and refuses a client's forged marker only where executions would run", async () => {
    h.targets.route("/mark", { status: 200 });
    const admin = h.actions();
    const { id } = await admin.createTarget({
      name: `mark-${backend}`,
      targetType: { case: "restWebhook", value: { interruptOnError: true } },
      endpoint: h.targets.endpoint("/mark"),
      timeout: { seconds: 5n },
    });
    const condition = { conditionType: { case: "request" as const, value: { condition: { case: "method" as const, value: addHumanUser } } } };
    await admin.setExecution({ condition, targets: [id] });
    await h.users().addHumanUser(addUser(`marked-${backend}`));
    const [call] = await h.targets.waitFor("/mark", 1);
    expect(call?.headers[hopHeader]).toBe("1");
    // A client cannot skip executions by sending the marker: it is refused instead.
    for (const value of ["1", "7", "x", "-1"]) {
      const error = await errorOf(h.users().addHumanUser(addUser(`forged-${backend}-${value}`), { headers: { [hopHeader]: value } }));
      expect(error.code).toBe(Code.FailedPrecondition);
    }
    expect(h.targets.callsTo("/mark").length).toBe(1);
    // "0" is an ordinary request; a method without executions serves any marker.
    await h.users().addHumanUser(addUser(`zero-${backend}`), { headers: { [hopHeader]: "0" } });
    expect(h.targets.callsTo("/mark").length).toBe(2);
    const listed = await h.users().listUsers({}, { headers: { [hopHeader]: "5" } });
    expect(listed.result.length).toBeGreaterThan(0);
    await admin.setExecution({ condition, targets: [] });
  });

  it("stops an event target that answers each event with a change that publishes it again, leaving that change undone", async () => {
    // The event target makes a change of its own (a new user), forwarding the marker as a well-behaved proxy or SDK would.
    const callbacks: (ConnectError | "ok")[] = [];
    let n = 0;
    h.targets.route("/event-loop", async (call) => {
      const username = `echo-${backend}-${++n}`;
      callbacks.push(
        await h
          .users()
          .addHumanUser({ ...addUser(username), username }, { headers: { [hopHeader]: String(call.headers[hopHeader]) } })
          .then(() => "ok" as const, (e: unknown) => ConnectError.from(e)),
      );
      return { status: 200 };
    });
    const admin = h.actions();
    const { id } = await admin.createTarget({
      name: `event-loop-${backend}`,
      targetType: { case: "restWebhook", value: { interruptOnError: false } },
      endpoint: h.targets.endpoint("/event-loop"),
      timeout: { seconds: 10n },
    });
    const condition = { conditionType: { case: "event" as const, value: { condition: { case: "event" as const, value: "user.human.added" } } } };
    await admin.setExecution({ condition, targets: [id] });
    try {
      await h.users().addHumanUser(addUser(`event-origin-${backend}`));
      const [delivery] = await h.targets.waitFor("/event-loop", 1, 60_000);
      expect(delivery?.headers[hopHeader]).toBe("1");
      // The target's change was refused before it was made: no user, no event, no second delivery.
      await waitFor(async () => callbacks.length === 1 && (await h.server.eventQueue.pending()) === 0, 60_000, "the delivery settled");
      expect(callbacks[0]).toBeInstanceOf(ConnectError);
      expect((callbacks[0] as ConnectError).code).toBe(Code.FailedPrecondition);
      expect((callbacks[0] as ConnectError).rawMessage).toMatch(/^actions loop: .*user\.human\.added/);
      const users = await h.users().listUsers({});
      expect(users.result.map((u) => u.username)).not.toContain(`echo-${backend}-1`);
      expect(h.targets.callsTo("/event-loop")).toHaveLength(1);
      // A change the target makes without the marker is an ordinary one (and is delivered).
      await h.users().addHumanUser({ ...addUser(`event-unmarked-${backend}`), username: `event-unmarked-${backend}` });
      await h.targets.waitFor("/event-loop", 2, 60_000);
    } finally {
      await admin.setExecution({ condition, targets: [] });
    }
  });
});

describe("maxHops", () => {
  it("allows as many levels as configured: 2 gives a looping target two calls per client request", async () => {
    const h = await startSampleHarness({ maxHops: 2 });
    try {
      const admin = h.actions();
      const { id } = await admin.createTarget({
        name: "loop-2",
        targetType: { case: "restWebhook", value: { interruptOnError: true } },
        endpoint: `${h.server.url}${addHumanUser}`,
        timeout: { seconds: 10n },
      });
      await admin.setExecution({
        condition: { conditionType: { case: "request", value: { condition: { case: "method", value: addHumanUser } } } },
        targets: [id],
      });
      const error = await errorOf(h.users().addHumanUser(addUser("two")));
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(h.records.filter((r) => r.targetId === id).map((r) => r.status)).toEqual([400, 400]);
    } finally {
      await h.close();
    }
  });
});

describe("maxHops for events", () => {
  it("marks event deliveries as the last hop allowed, so their targets' changes publish no event that would be delivered", async () => {
    const h = await startSampleHarness({ maxHops: 2, eventWorker: { pollIntervalMs: 50 } });
    try {
      const outcomes: string[] = [];
      h.targets.route("/event-2", async (call) => {
        const answer = await h
          .users()
          .addHumanUser(addUser(`echo-${outcomes.length}`), { headers: { [hopHeader]: String(call.headers[hopHeader]) } })
          .then(() => "ok", (e: unknown) => Code[ConnectError.from(e).code]);
        outcomes.push(`${call.headers[hopHeader]} ${answer}`);
        return { status: 200 };
      });
      const admin = h.actions();
      const { id } = await admin.createTarget({
        name: "event-2",
        targetType: { case: "restWebhook", value: { interruptOnError: false } },
        endpoint: h.targets.endpoint("/event-2"),
        timeout: { seconds: 10n },
      });
      await admin.setExecution({
        condition: { conditionType: { case: "event", value: { condition: { case: "event", value: "user.human.added" } } } },
        targets: [id],
      });
      await h.users().addHumanUser(addUser("origin"));
      await waitFor(async () => outcomes.length === 1 && (await h.server.eventQueue.pending()) === 0, 60_000, "the delivery settled");
      expect(outcomes).toEqual(["2 FailedPrecondition"]);
    } finally {
      await h.close();
    }
  });
});

describe("functions", () => {
  it("refuse a run for a request that a target call made, when the function has targets", async () => {
    const store = createMemoryStore();
    const targets = await startTargetServer();
    const dispatcher = createTargetDispatcher({ logger: silentLogger });
    try {
      const t = await store.createTarget({ name: "f", type: "call", interruptOnError: true, endpoint: targets.endpoint("/f"), timeoutMs: 5000 });
      await store.setExecution({ type: "function", name: "preuserinfo" }, [{ target: t.id }]);
      const runner = createFunctionRunner({ planner: createExecutionPlanner(store), dispatcher, logger: silentLogger });
      expect(await runner.run("preuserinfo", { a: 1 })).toEqual([]);
      expect(targets.callsTo("/f")[0]?.headers[hopHeader]).toBe("1");
      expect(await runner.run("preuserinfo", { a: 1 }, { hops: 0 })).toEqual([]);
      const error = await errorOf(runner.run("preuserinfo", { a: 1 }, { hops: 1 }));
      expect(error.code).toBe(Code.FailedPrecondition);
      expect(error.rawMessage).toMatch(/^actions loop: function "preuserinfo"/);
      expect(await runner.run("postnothing", {}, { hops: 9 })).toEqual([]);
      expect(targets.callsTo("/f").length).toBe(2);
      const deeper = createFunctionRunner({ planner: createExecutionPlanner(store), dispatcher, logger: silentLogger, maxHops: 3 });
      await deeper.run("preuserinfo", {}, { hops: 2 });
      expect(targets.callsTo("/f")[2]?.headers[hopHeader]).toBe("3");
    } finally {
      await dispatcher.close();
      await targets.close();
    }
  });
});
