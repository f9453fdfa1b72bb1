import type { DescMethod, JsonObject } from "@bufbuild/protobuf";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { ActionService as ActionServiceV2beta } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import { convertLegacyExecutionTargets, createSetExecutionCompatAdapter } from "../src/management/action-service-compat.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";
import { clearStore } from "./helpers/clear-store.js";

const condition = { response: { method: "/zitadel.user.v2.UserService/AddHumanUser" } };
const include = { request: { service: "zitadel.user.v2.UserService" } };

describe("convertLegacyExecutionTargets", () => {
  it("turns {target} objects into IDs and {include} objects into includes, keeping each kind's order", () => {
    expect(convertLegacyExecutionTargets({ condition, targets: [{ target: "1" }, { target: "2" }] })).toEqual({
      json: { condition, targets: ["1", "2"] },
      converted: true,
      reordered: false,
    });
    expect(convertLegacyExecutionTargets({ condition, targets: [{ target: "1" }, { include }] })).toEqual({
      json: { condition, targets: ["1"], includes: [include] },
      converted: true,
      reordered: false,
    });
  });

  it("accepts lists that mix strings and objects", () => {
    expect(convertLegacyExecutionTargets({ targets: ["1", { target: "2" }, "3", { include }] }).json).toEqual({
      targets: ["1", "2", "3"],
      includes: [include],
    });
  });

  it("puts converted includes before the includes already listed", () => {
    const other = { request: { method: "/zitadel.user.v2.UserService/ListUsers" } };
    expect(convertLegacyExecutionTargets({ targets: [{ include }], includes: [other] }).json).toEqual({ targets: [], includes: [include, other] });
    expect(convertLegacyExecutionTargets({ targets: [{ include }], includes: null }).json).toEqual({ targets: [], includes: [include] });
  });

  it("reports an include before a target, which the current shape runs after all targets", () => {
    expect(convertLegacyExecutionTargets({ targets: [{ include }, { target: "1" }] })).toEqual({
      json: { targets: ["1"], includes: [include] },
      converted: true,
      reordered: true,
    });
    expect(convertLegacyExecutionTargets({ targets: [{ include }, "1"] }).reordered).toBe(true);
  });

  it("leaves the current shape, and anything it cannot translate, unchanged", () => {
    const unchanged: JsonObject[] = [
      { condition, targets: ["1", "2"] },
      { condition, targets: [] },
      { condition },
      { condition, targets: "1" },
      { targets: [{ target: 1 }] },
      { targets: [{ target: null }] },
      { targets: [{ target: "1", include }] },
      { targets: [{ include: "request" }] },
      { targets: [{ include: [include] }] },
      { targets: [{ target: "1" }, null] },
      { targets: [{ target: "1" }, ["2"]] },
      { targets: [{ target: "1" }, 2] },
      { targets: [{}] },
      { targets: [{ target: "1" }], includes: "x" },
    ];
    for (const json of unchanged) {
      const result = convertLegacyExecutionTargets(json);
      expect(result, JSON.stringify(json)).toEqual({ json, converted: false, reordered: false });
      expect(result.json).toBe(json);
    }
  });

  it("never modifies its input", () => {
    const json: JsonObject = { condition, targets: [{ target: "1" }, { include }], includes: [] };
    const copy = structuredClone(json);
    convertLegacyExecutionTargets(json);
    expect(json).toEqual(copy);
  });
});

describe("createSetExecutionCompatAdapter", () => {
  const method = (service: { methods: readonly DescMethod[] }, name: string) => service.methods.find((m) => m.name === name)!;

  it("adapts SetExecution of v2beta and v2 and reports each conversion", () => {
    const seen: [string, boolean][] = [];
    const adapt = createSetExecutionCompatAdapter({ onConverted: (m, reordered) => seen.push([m.parent.typeName, reordered]) });
    for (const service of [ActionServiceV2beta, ActionServiceV2]) {
      expect(adapt(method(service, "SetExecution"), { condition, targets: [{ target: "1" }] })).toEqual({ condition, targets: ["1"] });
    }
    const current = { condition, targets: ["1"] };
    expect(adapt(method(ActionServiceV2, "SetExecution"), current)).toBe(current);
    adapt(method(ActionServiceV2, "SetExecution"), { targets: [{ include }, { target: "1" }] });
    expect(seen).toEqual([
      ["zitadel.action.v2beta.ActionService", false],
      ["zitadel.action.v2.ActionService", false],
      ["zitadel.action.v2.ActionService", true],
    ]);
  });

  it("leaves other methods alone", () => {
    const adapt = createSetExecutionCompatAdapter();
    const json = { targets: [{ target: "1" }] };
    expect(adapt(method(ActionServiceV2, "ListExecutions"), json)).toBe(json);
    expect(adapt(method(UserService, "AddHumanUser"), json)).toBe(json);
  });
});

describe("SetExecution over REST with the older shape of targets (sample server)", () => {
  let h: SampleHarness;
  let ids: string[];
  beforeAll(async () => {
    h = await startSampleHarness();
  });
  afterAll(async () => {
    await h.close();
  });
  beforeEach(async () => {
    await clearStore(h.server.store);
    ids = [];
    for (const name of ["one", "two"]) {
      const created = await h.rest(
        "POST",
        "/v2/actions/targets",
        { name, restWebhook: { interruptOnError: true }, endpoint: h.targets.endpoint("/hook"), timeout: "10s" },
        h.auth,
      );
      ids.push(created.json.id);
    }
    h.logs.length = 0;
  });

  it.each(["v2beta", "v2"])("accepts objects, strings and includes under /%s", async (version) => {
    const includedCondition = { response: { service: "zitadel.user.v2.UserService" } };
    expect((await h.rest("PUT", `/${version}/actions/executions`, { condition: includedCondition, targets: [ids[1]] }, h.auth)).status).toBe(200);
    const set = await h.rest(
      "PUT",
      `/${version}/actions/executions`,
      { condition, targets: [{ target: ids[0] }, ids[1], { include: includedCondition }] },
      h.auth,
    );
    expect(set.status).toBe(200);
    expect((await h.server.store.getExecution("response/zitadel.user.v2.UserService/AddHumanUser"))?.targets).toEqual([
      { target: ids[0] },
      { target: ids[1] },
      { include: "response/zitadel.user.v2.UserService" },
    ]);
    expect(h.logs.filter((l) => l.message.startsWith("accepted the older object shape"))).toEqual([
      { level: "info", message: "accepted the older object shape of targets", attributes: { rpc: `zitadel.action.${version}.ActionService/SetExecution` } },
    ]);
  });

  it("warns when an include had to move behind the targets", async () => {
    const includedCondition = { response: { service: "zitadel.user.v2.UserService" } };
    await h.rest("PUT", "/v2beta/actions/executions", { condition: includedCondition, targets: [ids[1]] }, h.auth);
    const set = await h.rest("PUT", "/v2beta/actions/executions", { condition, targets: [{ include: includedCondition }, { target: ids[0] }] }, h.auth);
    expect(set.status).toBe(200);
    expect((await h.server.store.getExecution("response/zitadel.user.v2.UserService/AddHumanUser"))?.targets).toEqual([
      { target: ids[0] },
      { include: "response/zitadel.user.v2.UserService" },
    ]);
    expect(h.logs.filter((l) => l.level === "warn").map((l) => l.message)).toEqual([
      "accepted the older object shape of targets; includes now run after all targets",
    ]);
  });

  it("rejects entries it cannot translate with 400, as before", async () => {
    for (const targets of [[{ target: 1 }], [{ target: ids[0], include: condition }], [{ other: ids[0] }], [{ target: ids[0] }, 7]]) {
      const set = await h.rest("PUT", "/v2beta/actions/executions", { condition, targets }, h.auth);
      expect(set.status, JSON.stringify(targets)).toBe(400);
      expect(set.json.code).toBe(3);
    }
    expect(await h.server.store.listExecutions()).toEqual([]);
  });

  it("still answers an unknown target of the older shape with 404", async () => {
    const set = await h.rest("PUT", "/v2beta/actions/executions", { condition, targets: [{ target: "no-such-target" }] }, h.auth);
    expect(set.status).toBe(404);
  });
});
