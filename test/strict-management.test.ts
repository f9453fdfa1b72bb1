// Issue 14: a misspelled or unknown field of a management request is InvalidArgument naming it, over REST and
// Connect JSON, for every ActionService RPC; nothing is dropped silently. Durations: whole milliseconds.
import { createConnectRouter } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { ActionService as ActionServiceV2beta } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { createActionService } from "../src/management/action-service.js";
import { createRestGateway } from "../src/management/rest-gateway.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { useTestDatabase } from "./helpers/postgres.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

const db = useTestDatabase();

describe.each(["memory", "postgres"] as const)("strict management input (%s)", (backend) => {
  let h: SampleHarness;
  let targetId: string;
  beforeAll(async () => {
    h = await startSampleHarness(backend === "postgres" ? { databaseUrl: db.url } : {});
    const created = await h.rest(
      "POST",
      "/v2beta/actions/targets",
      { name: "kept", restWebhook: { interruptOnError: true }, endpoint: h.targets.endpoint("/kept"), timeout: "5s" },
      h.auth,
    );
    targetId = created.json.id;
    const set = await h.rest("PUT", "/v2beta/actions/executions", { condition: { request: { all: true } }, targets: [targetId] }, h.auth);
    expect(set.status).toBe(200);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** state is everything the management API manages, to check that a refused request changed nothing. */
  const state = async () => JSON.stringify({ targets: await h.server.store.listTargets(), executions: await h.server.store.listExecutions() });

  it("refuses an unknown field of every RPC over Connect JSON, naming it, for v2beta and v2", async () => {
    const before = await state();
    for (const service of [ActionServiceV2beta, ActionServiceV2]) {
      for (const method of service.methods) {
        const res = await fetch(`${h.server.url}/${service.typeName}/${method.name}`, {
          method: "POST",
          headers: { ...h.auth, "content-type": "application/json" },
          body: JSON.stringify({ bogusFeld: 1 }),
        });
        const body = (await res.json()) as { code: string; message: string };
        expect(res.status, `${service.typeName}/${method.name}`).toBe(400);
        expect(body.code).toBe("invalid_argument");
        expect(body.message).toMatch(/"bogusFeld" is unknown/);
      }
    }
    expect(await state()).toBe(before);
  });

  it("refuses an unknown body member or query parameter of every REST route, naming it", async () => {
    const before = await state();
    let checked = 0;
    for (const service of [ActionServiceV2beta, ActionServiceV2]) {
      for (const route of restRoutesOf(service)) {
        const path = route.path.replace(/\{[^}]+\}/g, targetId);
        const withBody = route.body !== "";
        const answer = withBody
          ? await h.rest(route.httpMethod, path, { bogusFeld: 1 }, h.auth)
          : await h.rest(route.httpMethod, `${path}?bogusFeld=1`, undefined, h.auth);
        expect(answer.status, `${route.httpMethod} ${path}`).toBe(400);
        expect(answer.json.message, `${route.httpMethod} ${path}`).toMatch(/bogusFeld/);
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(2 * 12);
    expect(await state()).toBe(before);
  });

  it("answers the typos of issue 14 with InvalidArgument and leaves everything as it was", async () => {
    const before = await state();
    const typo = await h.rest(
      "POST",
      "/v2beta/actions/targets",
      { name: "typo", restWebhook: { interuptOnError: true }, endpoint: h.targets.endpoint("/typo"), timeout: "10s" },
      h.auth,
    );
    expect(typo.status).toBe(400);
    expect(typo.json.message).toBe('restWebhook.interuptOnError is not a field of zitadel.action.v2beta.RESTWebhook (did you mean "interruptOnError"?)');
    const target = await h.rest("PUT", "/v2beta/actions/executions", { condition: { request: { all: true } }, target: [targetId] }, h.auth);
    expect(target.status).toBe(400);
    expect(target.json.message).toBe('target is not a field of zitadel.action.v2beta.SetExecutionRequest (did you mean "targets"?)');
    const nested = await h.rest("POST", "/v2/actions/targets/search", { filters: [{ targetNameFiltr: { targetName: "k" } }] }, h.auth);
    expect(nested.status).toBe(400);
    expect(nested.json.message).toMatch(/^filters\[0\]\.targetNameFiltr is not a field of zitadel\.action\.v2\.TargetSearchFilter/);
    const query = await h.rest("GET", "/v2beta/actions/events/failed?limt=5", undefined, h.auth);
    expect(query.status).toBe(400);
    expect(query.json.message).toMatch(/query parameter "limt"/);
    // Over Connect JSON too; the execution set in beforeAll is still there.
    const connect = await fetch(`${h.server.url}/zitadel.action.v2.ActionService/SetExecution`, {
      method: "POST",
      headers: { ...h.auth, "content-type": "application/json" },
      body: JSON.stringify({ condition: { request: { all: true } }, target: [targetId] }),
    });
    expect(connect.status).toBe(400);
    expect(((await connect.json()) as { message: string }).message).toMatch(/key "target" is unknown/);
    expect(await state()).toBe(before);
    expect((await h.server.store.listExecutions()).map((e) => e.id)).toEqual(["request"]);
  });

  it("takes timeouts in whole milliseconds and names the field of any other duration", async () => {
    const before = await state();
    const create = (timeout: unknown, name = `d-${String(timeout)}`) =>
      h.rest("POST", "/v2/actions/targets", { name, restAsync: {}, endpoint: h.targets.endpoint("/d"), timeout }, h.auth);
    for (const [timeout, message] of [
      ["1.0000000001s", 'timeout: "1.0000000001s" is not a duration: seconds with at most 9 decimal places followed by "s", such as "10s" or "1.5s"'],
      ["0.0001s", 'timeout must be a whole number of milliseconds (at most 3 decimal places, for example "1.5s" or "0.25s"), got 0.0001s'],
      ["1.0005s", 'timeout must be a whole number of milliseconds (at most 3 decimal places, for example "1.5s" or "0.25s"), got 1.0005s'],
      ["10", 'timeout: "10" is not a duration: seconds with at most 9 decimal places followed by "s", such as "10s" or "1.5s"'],
      ["10sx", 'timeout: "10sx" is not a duration: seconds with at most 9 decimal places followed by "s", such as "10s" or "1.5s"'],
      [10, 'timeout must be a duration string such as "10s", got 10'],
      ["0s", "timeout must be greater than 0s"],
      ["270.001s", "timeout must be at most 270s"],
    ] as const) {
      const answer = await create(timeout);
      expect(answer.status, String(timeout)).toBe(400);
      expect(answer.json.message, String(timeout)).toBe(message);
    }
    expect(await state()).toBe(before);
    // Whole milliseconds, and nanosecond notation of them, are kept exactly.
    for (const [timeout, ms] of [["0.001s", 1], ["1.5s", 1500], ["0.250000000s", 250], ["270s", 270_000]] as const) {
      const answer = await create(timeout);
      expect(answer.status, timeout).toBe(200);
      expect((await h.server.store.getTarget(answer.json.id))?.timeoutMs).toBe(ms);
      await h.rest("DELETE", `/v2/actions/targets/${answer.json.id}`, undefined, h.auth);
    }
    // Over Connect JSON, a duration the decoder would refuse without naming the field is refused naming it.
    for (const version of ["v2", "v2beta"]) {
      for (const [timeout, message] of [
        ["1.0000000001s", 'timeout: "1.0000000001s" is not a duration: seconds with at most 9 decimal places followed by "s", such as "10s" or "1.5s"'],
        [10, 'timeout must be a duration string such as "10s", got 10'],
      ] as const) {
        const res = await fetch(`${h.server.url}/zitadel.action.${version}.ActionService/CreateTarget`, {
          method: "POST",
          headers: { ...h.auth, "content-type": "application/json" },
          body: JSON.stringify({ name: "connect-json", restAsync: {}, endpoint: h.targets.endpoint("/d"), timeout }),
        });
        expect(res.status, `${version} ${timeout}`).toBe(400);
        expect(await res.json()).toEqual({ code: "invalid_argument", message });
      }
      const nested = await fetch(`${h.server.url}/zitadel.action.${version}.ActionService/UpdateTarget`, {
        method: "POST",
        headers: { ...h.auth, "content-type": "application/json; charset=utf-8" },
        body: JSON.stringify({ id: "x", expirationSigningKey: "0.0000000001s" }),
      });
      expect(((await nested.json()) as { message: string }).message).toMatch(/^expirationSigningKey: "0\.0000000001s" is not a duration/);
    }
    expect(await state()).toBe(before);
    // The binary protocols reach the same check.
    const error = await h
      .actions("v2", "grpc")
      .createTarget({ name: "grpc", targetType: { case: "restAsync", value: {} }, endpoint: h.targets.endpoint("/d"), timeout: { seconds: 0n, nanos: 100_000 } })
      .then(() => undefined, (e: { rawMessage?: string }) => e.rawMessage);
    expect(error).toBe('timeout must be a whole number of milliseconds (at most 3 decimal places, for example "1.5s" or "0.25s"), got 0.0001s');
  });
});

/** gatewayRoutes are the REST routes of the ActionService, as the gateway serves them. */
const gatewayRoutes = (() => {
  const router = createConnectRouter();
  const impl = createActionService({ store: createMemoryStore(), services: [] });
  router.service(ActionServiceV2beta, impl);
  router.service(ActionServiceV2, impl);
  return createRestGateway({ handlers: router.handlers }).routes;
})();

/** restRoutesOf returns the REST routes of one version of the ActionService. */
function restRoutesOf(service: typeof ActionServiceV2 | typeof ActionServiceV2beta) {
  return gatewayRoutes.filter((r) => r.method.parent.typeName === service.typeName);
}
