// Management per instance (tenant): the principal of a call decides the instance it manages. An instance's
// token neither reads nor changes another instance's actions, tried with EVERY ActionService RPC (v2beta and
// v2) over REST, Connect and gRPC, against the memory and the PostgreSQL store, queue and delivery log.
import { generateKeyPairSync } from "node:crypto";
import { createConnectRouter } from "@connectrpc/connect";
import type { JsonValue } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { ActionService as ActionServiceV2beta } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import type { TargetCallRecord } from "../src/dispatch/target-dispatcher.js";
import type { EventQueue } from "../src/events/event-queue.js";
import { createMemoryEventQueue } from "../src/events/memory-event-queue.js";
import { createHostInstanceResolver } from "../src/host-instance.js";
import { silentLogger } from "../src/logger.js";
import { createNodeRouterHandler } from "../src/management/node-router-handler.js";
import { createPostgresDeliveryLog } from "../src/postgres/delivery-log.js";
import { createPostgresEventQueue } from "../src/postgres/event-queue.js";
import { createPostgresStore } from "../src/postgres/store.js";
import { listenCleartext } from "../src/sample/cleartext-server.js";
import { createUserService, userEventTypes } from "../src/sample/user-service.js";
import { type Actions, createActions } from "../src/setup.js";
import type { ActionStore, InstanceStore } from "../src/store/action-store.js";
import { createMemoryDeliveryLog, type DeliveryLog } from "../src/store/delivery-log.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { testJob } from "../src/testing/support.js";
import { newSchemaName, useTestDatabase } from "./helpers/postgres.js";
import { loopbackAgent, type TenantProtocol, tenantCaller } from "./helpers/tenant-client.js";

const systemToken = "system-token-0123456789";
const tokenA = "token-of-a-0123456789";
const tokenB = "token-of-b-0123456789";
const addHuman = "/zitadel.user.v2.UserService/AddHumanUser";
const protocols: readonly TenantProtocol[] = ["rest", "connect", "grpc"];
const versions = [
  { name: "v2beta", service: ActionServiceV2beta },
  { name: "v2", service: ActionServiceV2 },
] as const;
const publicKeyMethods = ["addPublicKey", "activatePublicKey", "deactivatePublicKey", "removePublicKey", "listPublicKeys"];

interface Backend {
  readonly store: ActionStore;
  readonly eventQueue: EventQueue;
  readonly deliveryLog: DeliveryLog;
  end(): Promise<void>;
}

const db = useTestDatabase();
const backends: Record<string, () => Promise<Backend>> = {
  memory: async () => ({
    store: createMemoryStore(),
    eventQueue: createMemoryEventQueue(),
    deliveryLog: createMemoryDeliveryLog(),
    end: async () => {},
  }),
  postgres: async () => {
    const schema = newSchemaName("tenants");
    const pool = new pg.Pool({ connectionString: db.url, max: 8 });
    return {
      store: await createPostgresStore({ pool, schema, logger: silentLogger }),
      eventQueue: await createPostgresEventQueue({ pool, schema, logger: silentLogger }),
      deliveryLog: await createPostgresDeliveryLog({ pool, schema, logger: silentLogger }),
      end: () => pool.end(),
    };
  },
};

/** What an instance has before the calls: a target, an execution on it, a target call and a failed event delivery. */
/** A public key for the targets the tests seed. */
const publicKeyPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }) as string;

interface Seeded {
  readonly targetId: string;
  readonly keyId: string;
  readonly callId: string;
  readonly deadId: string;
}

/** Everything an instance holds, to compare before and after. */
async function contents(actions: Actions, view: InstanceStore) {
  const instanceId = view.instanceId;
  await actions.deliveryLog.flush();
  return {
    snapshot: await view.snapshot(),
    publicKeys: await Promise.all((await view.listTargets()).map((t) => view.listPublicKeys(t.id))),
    calls: (await actions.deliveryLog.list({ instanceId })).records,
    dead: await actions.eventQueue.listDead({ instanceId }),
  };
}

async function seed(actions: Actions, instanceId: string): Promise<Seeded> {
  const view = actions.store.forInstance(instanceId);
  const target = await view.createTarget({
    name: "shared name",
    type: "webhook",
    interruptOnError: true,
    endpoint: `http://127.0.0.1:9/${instanceId}`,
    timeoutMs: 5000,
  });
  await view.setExecution({ type: "request", method: addHuman }, [{ target: target.id }]);
  await view.setExecution({ type: "event", all: true }, [{ target: target.id }]);
  const key = await view.addPublicKey(target.id, { publicKey: publicKeyPem });
  await view.activatePublicKey(target.id, key.keyId);
  const record: TargetCallRecord = {
    instanceId,
    targetId: target.id,
    targetName: target.name,
    executionId: `request${addHuman}`,
    trigger: addHuman,
    endpoint: target.endpoint,
    status: 500,
    durationMs: 3,
    error: "answered status 500",
    attempt: 1,
    async: false,
    startTime: new Date(),
  };
  actions.deliveryLog.record(record);
  await actions.deliveryLog.flush();
  const [call] = (await actions.deliveryLog.list({ instanceId, targetId: target.id })).records;
  await actions.eventQueue.enqueue([testJob(target.id, `${instanceId}/user/1`, { instanceId, executionId: "event" })]);
  const claimed = (await actions.eventQueue.claim(10, 1000)).filter((j) => (j.instanceId ?? "") === instanceId);
  expect(claimed).toHaveLength(1);
  await actions.eventQueue.giveUp(claimed[0]!, "answered status 400");
  const [dead] = await actions.eventQueue.listDead({ instanceId });
  return { targetId: target.id, keyId: key.keyId, callId: call!.id, deadId: dead!.id };
}

describe.each(Object.keys(backends))("management per instance (%s)", (backendName) => {
  let backend: Backend;
  let actions: Actions;
  let close: () => Promise<void>;
  let call: Record<string, ReturnType<typeof tenantCaller>>;
  let seeded: Record<"a" | "b", Seeded>;

  beforeAll(async () => {
    backend = await backends[backendName]!();
    actions = createActions({
      store: backend.store,
      eventQueue: backend.eventQueue,
      deliveryLog: backend.deliveryLog,
      eventTypes: userEventTypes,
      adminTokens: systemToken,
      instanceTokens: { a: tokenA, b: tokenB },
      // a.localhost and b.localhost are the instances a and b; any other host is the default instance "".
      resolveInstance: createHostInstanceResolver({ hosts: { "a.localhost": "a", "b.localhost": "b" } }),
      worker: false,
      logger: silentLogger,
    });
    const router = createConnectRouter({ interceptors: [actions.interceptor] });
    router.service(UserService, createUserService());
    actions.registerManagement(router);
    const handler = createNodeRouterHandler({ router, logger: silentLogger });
    const listener = await listenCleartext(handler);
    close = async () => {
      await listener.close();
      await actions.close();
      await backend.end();
    };
    const routes = handler.restGateway!.routes;
    call = Object.fromEntries(versions.map((v) => [v.name, tenantCaller({ port: listener.port, service: v.service, routes })]));
    seeded = { a: await seed(actions, "a"), b: await seed(actions, "b") };
  }, 60_000);
  afterAll(async () => {
    await close?.();
  });

  /** A request for every RPC, naming b's target (where a request names one). */
  const requestsNamingB = (method: string): JsonValue => {
    const b = seeded.b;
    const requests: Record<string, JsonValue> = {
      createTarget: { name: "shared name", restWebhook: {}, endpoint: "http://127.0.0.1:9/new", timeout: "5s" },
      updateTarget: { id: b.targetId, name: "taken over", endpoint: "http://127.0.0.1:9/evil" },
      deleteTarget: { id: b.targetId },
      getTarget: { id: b.targetId },
      listTargets: {},
      setExecution: { condition: { request: { method: addHuman } }, targets: [b.targetId] },
      listExecutions: {},
      listExecutionFunctions: {},
      listExecutionMethods: {},
      listExecutionServices: {},
      addPublicKey: { targetId: b.targetId, publicKey: Buffer.from(publicKeyPem).toString("base64") },
      activatePublicKey: { targetId: b.targetId, keyId: b.keyId },
      deactivatePublicKey: { targetId: b.targetId, keyId: b.keyId },
      removePublicKey: { targetId: b.targetId, keyId: b.keyId },
      listPublicKeys: { targetId: b.targetId },
      listTargetCalls: {},
      listFailedEventDeliveries: {},
      explainExecution: { condition: { request: { method: addHuman } } },
      testTarget: { id: b.targetId, condition: { request: { method: addHuman } } },
      retryFailedEventDeliveries: { targetId: b.targetId },
    };
    const request = requests[method];
    if (request === undefined) throw new Error(`no request for ${method}`);
    return request;
  };

  for (const version of versions) {
    const methods = version.service.methods.map((m) => m.localName);

    it(`${version.name}: serves ${methods.length} RPCs, all tried below`, () => {
      expect(methods.length).toBe(version.name === "v2" ? 20 : 15);
    });

    for (const protocol of protocols) {
      it(`${version.name} over ${protocol}: refuses every RPC without a token or with an unknown one (Unauthenticated)`, async () => {
        const before = await contents(actions, actions.store.forInstance("b"));
        for (const method of methods) {
          for (const token of [undefined, "not-a-token"]) {
            const outcome = await call[version.name]!(protocol, "b.localhost", token, method, requestsNamingB(method));
            expect([method, token, outcome.code]).toEqual([method, token, Code.Unauthenticated]);
          }
        }
        expect(await contents(actions, actions.store.forInstance("b"))).toEqual(before);
      });

      it(`${version.name} over ${protocol}: refuses a's token on b's host and on other hosts for every RPC (PermissionDenied)`, async () => {
        const before = await contents(actions, actions.store.forInstance("b"));
        const defaultBefore = await contents(actions, actions.store);
        for (const method of methods) {
          for (const host of ["b.localhost", "localhost", "127.0.0.1"]) {
            const outcome = await call[version.name]!(protocol, host, tokenA, method, requestsNamingB(method));
            expect([method, host, outcome.code]).toEqual([method, host, Code.PermissionDenied]);
          }
        }
        expect(await contents(actions, actions.store.forInstance("b"))).toEqual(before);
        expect(await contents(actions, actions.store)).toEqual(defaultBefore);
      });

      it(`${version.name} over ${protocol}: a's token on a's host reads and changes a only, whatever the request names`, async () => {
        const a = actions.store.forInstance("a");
        const b = actions.store.forInstance("b");
        const bBefore = await contents(actions, b);
        const tried = new Set<string>();
        const as = (method: string, request: JsonValue = requestsNamingB(method)) => {
          tried.add(method);
          return call[version.name]!(protocol, "a.localhost", tokenA, method, request);
        };

        // Target names are per instance: a may use the name b's target has.
        const created = await as("createTarget", { ...(requestsNamingB("createTarget") as object), name: `new ${version.name} ${protocol}` });
        expect(created.code).toBe("ok");
        const createdId = (created as { json: { id: string } }).json.id;
        expect(await a.getTarget(createdId)).toMatchObject({ instanceId: "a" });
        expect(await b.getTarget(createdId)).toBeUndefined();
        const sameName = await as("updateTarget", { id: createdId, name: "shared name" });
        expect(sameName.code).toBe(Code.AlreadyExists); // a's own "shared name"; b's does not count

        expect((await as("updateTarget")).code).toBe(Code.NotFound);
        expect(await as("deleteTarget")).toEqual({ code: "ok", json: {} }); // nothing deleted: no deletionDate
        expect((await as("getTarget")).code).toBe(Code.NotFound);
        const listed = await as("listTargets");
        expect(listed.code).toBe("ok");
        const listedIds = ((listed as { json: { targets?: { id: string }[] } }).json.targets ?? []).map((t) => t.id);
        expect(listedIds).toContain(seeded.a.targetId);
        expect(listedIds).toContain(createdId);
        expect(listedIds).not.toContain(seeded.b.targetId);
        expect((await as("setExecution")).code).toBe(Code.NotFound);
        const executions = await as("listExecutions");
        expect(executions.code).toBe("ok");
        expect(JSON.stringify(executions)).toContain(seeded.a.targetId);
        expect(JSON.stringify(executions)).not.toContain(seeded.b.targetId);
        for (const method of ["listExecutionFunctions", "listExecutionMethods", "listExecutionServices"]) {
          // The same lists for every instance: what the server serves, not what an instance has.
          const own = await as(method);
          expect(own.code).toBe("ok");
          expect(await call[version.name]!(protocol, "b.localhost", tokenB, method)).toEqual(own);
        }
        if (version.name === "v2") {
          // b's target, and so its keys, do not exist for a: not found, nothing to remove, nothing to list.
          for (const method of publicKeyMethods) {
            const answer = await as(method);
            if (method === "removePublicKey") expect(answer.code, method).toBe("ok");
            else if (method === "listPublicKeys") expect(JSON.stringify(answer), method).not.toContain(seeded.b.keyId);
            else expect(answer.code, method).toBe(Code.NotFound);
          }
        }
        const calls = await as("listTargetCalls");
        expect(calls.code).toBe("ok");
        const callIds = ((calls as { json: { calls?: { id: string }[] } }).json.calls ?? []).map((c) => c.id);
        expect(callIds).toContain(seeded.a.callId);
        expect(callIds).not.toContain(seeded.b.callId);
        const ofB = await as("listTargetCalls", { targetId: seeded.b.targetId });
        expect(ofB.code).toBe("ok");
        expect((ofB as { json: { calls?: unknown[] } }).json.calls ?? []).toEqual([]);
        const failed = await as("listFailedEventDeliveries");
        expect(failed.code).toBe("ok");
        const deadIds = ((failed as { json: { deliveries?: { id: string }[] } }).json.deliveries ?? []).map((d) => d.id);
        expect(deadIds).toEqual([seeded.a.deadId]);
        // a's own execution explained, b's not seen; b's target not found to test; b's deliveries not retried.
        const explained = await as("explainExecution");
        expect(explained.code).toBe("ok");
        expect(JSON.stringify(explained)).toContain(seeded.a.targetId);
        expect(JSON.stringify(explained)).not.toContain(seeded.b.targetId);
        expect((await as("testTarget")).code).toBe(Code.NotFound);
        expect(await as("retryFailedEventDeliveries")).toEqual({ code: "ok", json: {} });
        expect(await as("retryFailedEventDeliveries", { id: seeded.b.deadId })).toEqual({ code: "ok", json: {} });

        expect([...tried].sort()).toEqual([...methods].sort());
        expect(await contents(actions, b)).toEqual(bBefore);
      });
    }
  }

  it("lets the system token manage the instance of the host it calls, and the default instance on other hosts", async () => {
    const list = async (host: string) => {
      const outcome = await call.v2!("connect", host, systemToken, "listTargets");
      expect(outcome.code).toBe("ok");
      return ((outcome as { json: { targets?: { id: string }[] } }).json.targets ?? []).map((t) => t.id);
    };
    expect(await list("a.localhost")).toContain(seeded.a.targetId);
    expect(await list("b.localhost")).toContain(seeded.b.targetId);
    expect(await list("b.localhost")).not.toContain(seeded.a.targetId);
    const created = await call.v2!("grpc", "localhost", systemToken, "createTarget", {
      name: "default instance",
      restAsync: {},
      endpoint: "http://127.0.0.1:9/",
      timeout: "1s",
    });
    expect(created.code).toBe("ok");
    const id = (created as { json: { id: string } }).json.id;
    expect(await actions.store.getTarget(id)).toMatchObject({ instanceId: "" });
    expect(await list("127.0.0.1")).toEqual([id]);
    const rest = await call.v2beta!("rest", "b.localhost", systemToken, "getTarget", { id: seeded.b.targetId });
    expect(rest.code).toBe("ok");
    // b's own token manages b.
    expect((await call.v2!("grpc", "b.localhost", tokenB, "getTarget", { id: seeded.b.targetId })).code).toBe("ok");
  });
});

describe("caps per instance over the API", () => {
  it("answers a creation beyond the instance's cap with ResourceExhausted naming the cap (HTTP 429), per instance", async () => {
    const actions = createActions({
      store: createMemoryStore({ maxTargetsPerInstance: 1, maxExecutionsPerInstance: 1 }),
      adminTokens: systemToken,
      resolveInstance: createHostInstanceResolver({ hosts: { "a.localhost": "a", "b.localhost": "b" } }),
      worker: false,
      logger: silentLogger,
    });
    const router = createConnectRouter({ interceptors: [actions.interceptor] });
    router.service(UserService, createUserService());
    actions.registerManagement(router);
    const handler = createNodeRouterHandler({ router, logger: silentLogger });
    const listener = await listenCleartext(handler);
    try {
      const call = tenantCaller({ port: listener.port, service: ActionServiceV2, routes: handler.restGateway!.routes });
      const target = (name: string) => ({ name, restWebhook: {}, endpoint: "http://127.0.0.1:9/", timeout: "5s" });
      const first = await call("rest", "a.localhost", systemToken, "createTarget", target("one"));
      expect(first.code).toBe("ok");
      const id = (first as { json: { id: string } }).json.id;
      for (const protocol of protocols) {
        const refused = await call(protocol, "a.localhost", systemToken, "createTarget", target("two"));
        expect(refused).toEqual({ code: Code.ResourceExhausted, message: expect.stringContaining("maxTargetsPerInstance") });
      }
      expect((await call("grpc", "b.localhost", systemToken, "createTarget", target("two"))).code).toBe("ok");
      const execution = (method: string) => ({ condition: { request: { method } }, targets: [id] });
      expect((await call("connect", "a.localhost", systemToken, "setExecution", execution(addHuman))).code).toBe("ok");
      const tooMany = await call("rest", "a.localhost", systemToken, "setExecution", execution("/zitadel.user.v2.UserService/GetUserByID"));
      expect(tooMany).toEqual({ code: Code.ResourceExhausted, message: expect.stringContaining("maxExecutionsPerInstance") });
      // The HTTP status of the REST answer.
      const res = await undiciFetch(`http://a.localhost:${listener.port}/v2beta/actions/targets`, {
        method: "POST",
        headers: { authorization: `Bearer ${systemToken}`, "content-type": "application/json" },
        body: JSON.stringify(target("three")),
        dispatcher: loopbackAgent,
      });
      expect(res.status).toBe(429);
      await res.arrayBuffer();
    } finally {
      await listener.close();
      await actions.close();
    }
  });
});
