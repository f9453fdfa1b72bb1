// Issue 14: no execution, at any level, can make the management API unusable: the interceptor never
// intercepts the ActionService (whatever executions exist), and the ActionService refuses conditions that name
// it, also when an application wires the lower-level createActionsInterceptor and createActionService itself.
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { ActionService as ActionServiceV2beta } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import { createActionsInterceptor } from "../src/actions-interceptor.js";
import type { Condition } from "../src/condition.js";
import { createTargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { silentLogger } from "../src/logger.js";
import { createActionService } from "../src/management/action-service.js";
import { createUserService } from "../src/sample/user-service.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { addUser } from "./helpers/intercepted-server.js";
import { useTestDatabase } from "./helpers/postgres.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

async function codeOf(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (e) {
    return ConnectError.from(e).code;
  }
}

const protectedConditions: Condition[] = [
  { type: "request", all: true },
  { type: "response", all: true },
  { type: "request", service: "zitadel.action.v2beta.ActionService" },
  { type: "request", service: "zitadel.action.v2.ActionService" },
  { type: "response", service: "zitadel.action.v2.ActionService" },
  { type: "request", method: "/zitadel.action.v2.ActionService/DeleteTarget" },
  { type: "request", method: "/zitadel.action.v2beta.ActionService/SetExecution" },
  { type: "response", method: "/zitadel.action.v2beta.ActionService/ListTargets" },
];

describe("the lower-level createActionsInterceptor and createActionService", () => {
  let targets: TargetServer;
  beforeAll(async () => {
    targets = await startTargetServer();
    targets.route("/down", { status: 500 });
  });
  afterAll(async () => {
    await targets.close();
  });

  it("never intercept the ActionService, even with executions on it stored directly, and refuse to set such executions", async () => {
    const store = createMemoryStore();
    const dispatcher = createTargetDispatcher({ logger: silentLogger });
    // An application that wires everything itself, with the ActionService behind the same interceptor
    // and listed among the services conditions may name.
    const service = createActionService({ store, services: [UserService, ActionServiceV2, ActionServiceV2beta] });
    const transport = createRouterTransport(
      (router) => {
        router.service(UserService, createUserService());
        router.service(ActionServiceV2, service);
        router.service(ActionServiceV2beta, service);
      },
      { router: { interceptors: [createActionsInterceptor({ store, dispatcher, logger: silentLogger })] } },
    );
    const v2 = createClient(ActionServiceV2, transport);
    const v2beta = createClient(ActionServiceV2beta, transport);
    const users = createClient(UserService, transport);
    const down = await store.createTarget({ name: "down", type: "webhook", interruptOnError: true, endpoint: targets.endpoint("/down"), timeoutMs: 5000 });

    // Through the API: refused, naming the condition, at every level and for both versions.
    for (const client of [v2, v2beta]) {
      for (const condition of protectedConditions.filter((c) => !("all" in c))) {
        const selector = "method" in condition ? { case: "method" as const, value: condition.method } : { case: "service" as const, value: (condition as { service: string }).service };
        const error = await client
          .setExecution({ condition: { conditionType: { case: condition.type as "request", value: { condition: selector } } }, targets: [down.id] })
          .then(() => undefined, (e: unknown) => ConnectError.from(e));
        expect(error?.code, JSON.stringify(condition)).toBe(Code.InvalidArgument);
        expect(error?.rawMessage).toMatch(/^condition: zitadel\.action\.v2(beta)?\.ActionService is never intercepted/);
      }
      expect((await client.listExecutionServices({})).services).toEqual(["zitadel.user.v2.UserService"]);
      expect((await client.listExecutionMethods({})).methods.every((m) => m.startsWith("/zitadel.user.v2.UserService/"))).toBe(true);
    }
    expect(await store.listExecutions()).toEqual([]);

    // Stored behind the API's back (the TypeScript API, or rows written with SQL): never run for the ActionService.
    for (const condition of protectedConditions) await store.setExecution(condition, [{ target: down.id }]);
    expect(await codeOf(users.addHumanUser(addUser("blocked")))).toBe(Code.FailedPrecondition);
    for (const client of [v2, v2beta]) {
      expect(await codeOf(client.listTargets({}))).toBe("ok");
      expect(await codeOf(client.getTarget({ id: down.id }))).toBe("ok");
    }
    // The administrator repairs it through the API that the executions name.
    expect(await codeOf(v2beta.deleteTarget({ id: down.id }))).toBe("ok");
    expect(await codeOf(users.addHumanUser(addUser("free")))).toBe("ok");
    // Only the UserService call reached the target.
    expect(targets.callsTo("/down").length).toBe(1);
    await dispatcher.close();
  });
});

const db = useTestDatabase();

describe.each(["memory", "postgres"] as const)("the sample server (%s)", (backend) => {
  let h: SampleHarness;
  beforeAll(async () => {
    h = await startSampleHarness(backend === "postgres" ? { databaseUrl: db.url } : {});
    h.targets.route("/down", { status: 500 });
  });
  afterAll(async () => {
    await h?.close();
  });

  it("refuses executions on the ActionService over REST, and a failing `all` execution leaves it usable", async () => {
    const created = await h.rest(
      "POST",
      "/v2beta/actions/targets",
      { name: "down", restWebhook: { interruptOnError: true }, endpoint: h.targets.endpoint("/down"), timeout: "5s" },
      h.auth,
    );
    expect(created.status).toBe(200);
    const id = created.json.id as string;
    for (const condition of [
      { request: { service: "zitadel.action.v2beta.ActionService" } },
      { request: { method: "/zitadel.action.v2.ActionService/SetExecution" } },
      { response: { method: "/zitadel.action.v2beta.ActionService/DeleteTarget" } },
    ]) {
      for (const version of ["v2beta", "v2"]) {
        const answer = await h.rest("PUT", `/${version}/actions/executions`, { condition, targets: [id] }, h.auth);
        expect(answer.status, JSON.stringify(condition)).toBe(400);
        expect(answer.json.message).toMatch(/is never intercepted/);
      }
    }
    expect((await h.rest("PUT", "/v2/actions/executions", { condition: { request: { all: true } }, targets: [id] }, h.auth)).status).toBe(200);
    expect((await h.rest("POST", "/v2/users/human", addUser("blocked"))).status).toBe(400);
    for (const version of ["v2beta", "v2"]) {
      expect((await h.rest("POST", `/${version}/actions/targets/search`, {}, h.auth)).status).toBe(200);
      expect(await codeOf(h.actions(version as "v2", "grpc").listExecutions({}))).toBe("ok");
    }
    expect((await h.rest("DELETE", `/v2beta/actions/targets/${id}`, undefined, h.auth)).status).toBe(200);
    expect((await h.rest("POST", "/v2/users/human", addUser("free"))).status).toBe(200);
  });
});
