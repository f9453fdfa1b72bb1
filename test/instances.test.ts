// Instances (tenants) at run time: the interceptor, the planner, events and functions run the
// executions of the caller's instance only; createActions puts it together.
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import { createActionsInterceptor } from "../src/actions-interceptor.js";
import { callerContextKey } from "../src/caller-context.js";
import { createEventPublisher } from "../src/events/event-publisher.js";
import { createEventWorker } from "../src/events/event-worker.js";
import { createMemoryEventQueue } from "../src/events/memory-event-queue.js";
import { createFunctionRunner } from "../src/functions/function-runner.js";
import { silentLogger } from "../src/logger.js";
import { createExecutionPlanner } from "../src/plan/execution-planner.js";
import { listenCleartext } from "../src/sample/cleartext-server.js";
import { createUserService } from "../src/sample/user-service.js";
import { createActions } from "../src/setup.js";
import type { ActionStore } from "../src/store/action-store.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { createTargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import type { TargetInput } from "../src/target.js";
import { humanOf } from "./helpers/intercepted-server.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

const addHuman = "/zitadel.user.v2.UserService/AddHumanUser";
let users = 0;
const addUser = (givenName: string) => ({
  profile: { givenName, familyName: "F" },
  email: { email: `${givenName.toLowerCase()}.${++users}@example.com` },
});

/** fromHeader puts the instance named by the x-instance header into the caller context. */
const fromHeader: Interceptor = (next) => (req) => {
  req.contextValues.set(callerContextKey, { instanceID: req.header.get("x-instance") ?? "" });
  return next(req);
};

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function targets(): Promise<TargetServer> {
  const t = await startTargetServer();
  cleanups.push(() => t.close());
  return t;
}

const call = (targetServer: TargetServer, path: string, extra: Partial<TargetInput> = {}): TargetInput => ({
  name: path,
  type: "call",
  interruptOnError: true,
  endpoint: targetServer.endpoint(path),
  timeoutMs: 5000,
  ...extra,
});

async function serve(store: ActionStore, interceptors: Interceptor[]) {
  const dispatcher = createTargetDispatcher({ logger: silentLogger });
  const handler = connectNodeAdapter({
    routes: (router) => router.service(UserService, createUserService()),
    interceptors,
  });
  const listener = await listenCleartext(handler);
  cleanups.push(async () => {
    await listener.close();
    await dispatcher.close();
  });
  const baseUrl = `http://127.0.0.1:${listener.port}`;
  return { dispatcher, client: createClient(UserService, createConnectTransport({ baseUrl, httpVersion: "1.1" })), baseUrl };
}

describe("the interceptor", () => {
  it("runs the executions of the caller's instance only, two instances on the same method side by side", async () => {
    const store = createMemoryStore();
    const t = await targets();
    t.route("/a", (c) => ({ body: { ...c.json.request, profile: { ...c.json.request.profile, givenName: "FromA" } } }));
    t.route("/b", (c) => ({ body: { ...c.json.request, profile: { ...c.json.request.profile, givenName: "FromB" } } }));
    const a = await store.forInstance("a").createTarget(call(t, "/a"));
    const b = await store.forInstance("b").createTarget(call(t, "/b"));
    await store.forInstance("a").setExecution({ type: "request", method: addHuman }, [{ target: a.id }]);
    await store.forInstance("b").setExecution({ type: "request", method: addHuman }, [{ target: b.id }]);
    const dispatcher = createTargetDispatcher({ logger: silentLogger });
    cleanups.push(() => dispatcher.close());
    const { client } = await serve(store, [fromHeader, createActionsInterceptor({ store, dispatcher, logger: silentLogger })]);

    const nameOf = async (instance: string | undefined) => {
      const headers: Record<string, string> = instance === undefined ? {} : { "x-instance": instance };
      const { userId } = await client.addHumanUser(addUser("Original"), { headers });
      return humanOf((await client.getUserByID({ userId })).user)?.profile?.givenName;
    };
    expect(await nameOf("a")).toBe("FromA");
    expect(await nameOf("b")).toBe("FromB");
    expect(await nameOf("c")).toBe("Original");
    expect(await nameOf(undefined)).toBe("Original");
    expect(t.callsTo("/a").map((c) => c.json.instanceID)).toEqual(["a"]);
    expect(t.callsTo("/b").map((c) => c.json.instanceID)).toEqual(["b"]);
  });

  it("takes the instance from resolveInstance, and resolveContext only runs for requests with a match", async () => {
    const store = createMemoryStore();
    const t = await targets();
    const hook = await store.forInstance("tenant").createTarget(call(t, "/hook", { type: "webhook" }));
    await store.forInstance("tenant").setExecution({ type: "request", all: true }, [{ target: hook.id }]);
    let contexts = 0;
    const interceptor = createActionsInterceptor({
      store,
      logger: silentLogger,
      resolveInstance: (req) => req.header.get("x-instance") ?? "",
      resolveContext: () => {
        contexts++;
        return { orgID: "org-1" };
      },
    });
    const { client } = await serve(store, [interceptor]);
    await client.addHumanUser(addUser("Nobody"));
    expect(contexts).toBe(0);
    await client.addHumanUser(addUser("Tenant"), { headers: { "x-instance": "tenant" } });
    expect(contexts).toBe(1);
    const [received] = await t.waitFor("/hook", 1);
    expect(received!.json).toMatchObject({ fullMethod: addHuman, instanceID: "tenant", orgID: "org-1" });
  });

  it("uses the instanceID option for callers without an instance, in scope and payload", async () => {
    const store = createMemoryStore();
    const t = await targets();
    const hook = await store.forInstance("fallback").createTarget(call(t, "/hook", { type: "webhook" }));
    await store.forInstance("fallback").setExecution({ type: "request", all: true }, [{ target: hook.id }]);
    const { client } = await serve(store, [createActionsInterceptor({ store, logger: silentLogger, instanceID: "fallback" })]);
    await client.addHumanUser(addUser("Someone"));
    const [received] = await t.waitFor("/hook", 1);
    expect(received!.json.instanceID).toBe("fallback");
  });

  it("fails the RPC with InvalidArgument for an instance ID that cannot be one", async () => {
    const store = createMemoryStore();
    const { client } = await serve(store, [
      createActionsInterceptor({ store, logger: silentLogger, resolveInstance: () => "x".repeat(201) }),
    ]);
    await expect(client.addHumanUser(addUser("Long"))).rejects.toMatchObject({ code: Code.InvalidArgument });
  });
});

describe("the planner", () => {
  it("compiles an instance's plan on first use and recompiles only the instance that changed", async () => {
    const store = createMemoryStore();
    const planner = createExecutionPlanner(store);
    cleanups.push(() => planner.close());
    const a = store.forInstance("a");
    const b = store.forInstance("b");
    const ta = await a.createTarget({ name: "t", type: "webhook", endpoint: "http://127.0.0.1:9/", timeoutMs: 1000 });
    await a.setExecution({ type: "request", all: true }, [{ target: ta.id }]);
    const planA = await planner.plan("a");
    const planB = await planner.plan("b");
    expect(planA.forMethod(addHuman).request?.targets.map((t) => t.id)).toEqual([ta.id]);
    expect(planB.forMethod(addHuman).request).toBeUndefined();
    const tb = await b.createTarget({ name: "t", type: "webhook", endpoint: "http://127.0.0.1:9/", timeoutMs: 1000 });
    await b.setExecution({ type: "request", all: true }, [{ target: tb.id }]);
    // Only b's plan is stale: a's is the very same object, returned without a promise.
    expect(planner.plan("a")).toBe(planA);
    const newB = await planner.plan("b");
    expect(newB).not.toBe(planB);
    expect(newB.forMethod(addHuman).request?.targets.map((t) => t.id)).toEqual([tb.id]);
  });

  it("recompiles every instance after a change of unknown scope", async () => {
    const store = createMemoryStore();
    let announce: ((change: { instanceId: undefined }) => void) | undefined;
    const watching: ActionStore = {
      ...store,
      watch(listener) {
        announce = listener;
        return store.watch(listener);
      },
    };
    const planner = createExecutionPlanner(watching);
    cleanups.push(() => planner.close());
    const before = await planner.plan("a");
    expect(planner.plan("a")).toBe(before);
    announce!({ instanceId: undefined });
    expect(planner.plan("a")).toBeInstanceOf(Promise);
  });
});

describe("events and functions", () => {
  it("deliver an event to the targets of the event's instance only", async () => {
    const store = createMemoryStore();
    const t = await targets();
    for (const instance of ["a", "b"]) {
      const target = await store.forInstance(instance).createTarget(call(t, `/${instance}`, { type: "webhook", interruptOnError: false }));
      await store.forInstance(instance).setExecution({ type: "event", all: true }, [{ target: target.id }]);
    }
    const planner = createExecutionPlanner(store);
    const queue = createMemoryEventQueue();
    const dispatcher = createTargetDispatcher({ logger: silentLogger });
    const worker = createEventWorker({ queue, planner, dispatcher, logger: silentLogger });
    worker.start();
    cleanups.push(async () => {
      await worker.stop();
      await dispatcher.close();
      planner.close();
    });
    const publisher = createEventPublisher({ planner, queue });
    const event = (instanceID: string, sequence: number) => ({
      aggregateID: "u1", aggregateType: "user", resourceOwner: "o", instanceID, version: "v2", sequence,
      eventType: "user.human.added", createdAt: new Date(), userID: "", payload: {},
    });
    expect(await publisher.publish([event("a", 1), event("b", 2), event("c", 3)])).toBe(2);
    const [toA] = await t.waitFor("/a", 1);
    const [toB] = await t.waitFor("/b", 1);
    expect([toA!.json.instanceID, toA!.json.sequence]).toEqual(["a", 1]);
    expect([toB!.json.instanceID, toB!.json.sequence]).toEqual(["b", 2]);
  });

  it("run a function with the executions of the given instance", async () => {
    const store = createMemoryStore();
    const t = await targets();
    t.route("/fn", { body: { append_claims: [{ key: "k", value: "v" }] } });
    const target = await store.forInstance("a").createTarget(call(t, "/fn"));
    await store.forInstance("a").setExecution({ type: "function", name: "preuserinfo" }, [{ target: target.id }]);
    const planner = createExecutionPlanner(store);
    const dispatcher = createTargetDispatcher({ logger: silentLogger });
    cleanups.push(async () => {
      await dispatcher.close();
      planner.close();
    });
    const runner = createFunctionRunner({ planner, dispatcher, logger: silentLogger });
    expect(await runner.run("preuserinfo", {}, { instanceId: "a" })).toEqual([{ append_claims: [{ key: "k", value: "v" }] }]);
    expect(await runner.run("preuserinfo", {}, { instanceId: "b" })).toEqual([]);
    expect(await runner.run("preuserinfo", {})).toEqual([]);
  });
});

describe("createActions", () => {
  async function mount(managementInterceptors: Interceptor[] = []) {
    const actions = createActions({ store: createMemoryStore(), logger: silentLogger, eventTypes: ["user.human.added"], adminTokens: "secret" });
    cleanups.push(() => actions.close());
    const handler = connectNodeAdapter({
      routes: (router) => {
        router.service(UserService, createUserService());
        actions.registerManagement(router, { interceptors: managementInterceptors });
      },
      interceptors: [fromHeader, actions.interceptor],
    });
    const listener = await listenCleartext(handler);
    cleanups.push(() => listener.close());
    const baseUrl = `http://127.0.0.1:${listener.port}`;
    const auth = { authorization: "Bearer secret" };
    return {
      actions,
      users: createClient(UserService, createConnectTransport({ baseUrl, httpVersion: "1.1" })),
      admin: createClient(ActionServiceV2, createGrpcTransport({ baseUrl })),
      auth,
    };
  }

  it("wires the interceptor, the management API (authenticated, strict) and the delivery log in one call", async () => {
    const { actions, users, admin, auth } = await mount();
    const t = await targets();
    t.route("/call", (c) => ({ body: { ...c.json.request, profile: { ...c.json.request.profile, givenName: "Changed" } } }));
    await expect(admin.listTargets({})).rejects.toMatchObject({ code: Code.Unauthenticated });
    const { id } = await admin.createTarget(
      { name: "call", targetType: { case: "restCall", value: { interruptOnError: true } }, endpoint: t.endpoint("/call"), timeout: { seconds: 5n } },
      { headers: auth },
    );
    await admin.setExecution({ condition: { conditionType: { case: "request", value: { condition: { case: "method", value: addHuman } } } }, targets: [id] }, { headers: auth });
    expect((await admin.listExecutionServices({}, { headers: auth })).services).toEqual(["zitadel.user.v2.UserService"]);
    const { userId } = await users.addHumanUser(addUser("Original"));
    expect(humanOf((await users.getUserByID({ userId })).user)?.profile?.givenName).toBe("Changed");
    await actions.deliveryLog.flush();
    expect((await actions.deliveryLog.list()).records.map((r) => [r.targetName, r.status])).toEqual([["call", 200]]);
  });

  it("never runs executions for the management API, so a failing `all` target cannot lock administrators out", async () => {
    const { users, admin, auth } = await mount();
    const t = await targets();
    t.route("/down", { status: 500 });
    const { id } = await admin.createTarget(
      { name: "down", targetType: { case: "restWebhook", value: { interruptOnError: true } }, endpoint: t.endpoint("/down"), timeout: { seconds: 5n } },
      { headers: auth },
    );
    await admin.setExecution({ condition: { conditionType: { case: "request", value: { condition: { case: "all", value: true } } } }, targets: [id] }, { headers: auth });
    await expect(users.addHumanUser(addUser("Blocked"))).rejects.toMatchObject({ code: Code.FailedPrecondition });
    // The API that fixes it still works, and conditions on it are refused.
    await expect(
      admin.setExecution(
        { condition: { conditionType: { case: "request", value: { condition: { case: "service", value: "zitadel.action.v2.ActionService" } } } }, targets: [id] },
        { headers: auth },
      ),
    ).rejects.toMatchObject({ code: Code.InvalidArgument });
    await admin.deleteTarget({ id }, { headers: auth });
    expect((await users.addHumanUser(addUser("Free"))).userId).not.toBe("");
    expect(t.callsTo("/down").length).toBe(1);
  });

  it("scopes management calls to the instance of their principal, not to what the router's interceptors say", async () => {
    const headers = { authorization: "Bearer secret", "x-instance": "a" };
    const target = { name: "t", targetType: { case: "restAsync" as const, value: {} }, endpoint: "http://127.0.0.1:9/", timeout: { seconds: 1n } };
    // The router's interceptors (fromHeader) do not run for the ActionService, and an
    // admin token without resolveInstance manages the default instance, even when the
    // ActionService's own interceptors say otherwise: the principal decides.
    const plain = await mount([fromHeader]);
    const { id } = await plain.admin.createTarget(target, { headers });
    expect(await plain.actions.store.getTarget(id)).toMatchObject({ instanceId: "" });
    expect(await plain.actions.store.forInstance("a").getTarget(id)).toBeUndefined();
  });

  it("lets the ActionService's own interceptors decide the instance when they authenticate callers themselves", async () => {
    const actions = createActions({ store: createMemoryStore(), logger: silentLogger });
    cleanups.push(() => actions.close());
    const ownAuth: Interceptor = (next) => (req) => {
      if (req.header.get("authorization") !== "Bearer own") throw new ConnectError("who are you?", Code.Unauthenticated);
      return next(req);
    };
    const handler = connectNodeAdapter({ routes: (router) => actions.registerManagement(router, { interceptors: [ownAuth, fromHeader] }) });
    const listener = await listenCleartext(handler);
    cleanups.push(() => listener.close());
    const admin = createClient(ActionServiceV2, createGrpcTransport({ baseUrl: `http://127.0.0.1:${listener.port}` }));
    const target = { name: "t", targetType: { case: "restAsync" as const, value: {} }, endpoint: "http://127.0.0.1:9/", timeout: { seconds: 1n } };
    await expect(admin.listTargets({}, { headers: { "x-instance": "a" } })).rejects.toMatchObject({ code: Code.Unauthenticated });
    const { id } = await admin.createTarget(target, { headers: { authorization: "Bearer own", "x-instance": "a" } });
    expect(await actions.store.forInstance("a").getTarget(id)).toMatchObject({ instanceId: "a" });
    expect(await actions.store.getTarget(id)).toBeUndefined();
    expect((await admin.listTargets({}, { headers: { authorization: "Bearer own", "x-instance": "b" } })).targets).toEqual([]);
  });

  it("refuses an open management API", async () => {
    const actions = createActions({ store: createMemoryStore(), logger: silentLogger });
    cleanups.push(() => actions.close());
    let thrown: unknown;
    connectNodeAdapter({
      routes: (router) => {
        try {
          actions.registerManagement(router);
        } catch (e) {
          thrown = e;
        }
      },
    });
    expect(ConnectError.from(thrown).code).toBe(Code.FailedPrecondition);
  });
});
