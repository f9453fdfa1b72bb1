import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ActionStore } from "../src/store/action-store.js";
import { createExecutionPlanner, type ExecutionPlanner } from "../src/plan/execution-planner.js";
import { runClaimsFunction, runSamlFunction } from "../src/functions/function-contracts.js";
import { createFunctionRunner, type FunctionRunner } from "../src/functions/function-runner.js";
import { silentLogger } from "../src/logger.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { createTargetDispatcher, type TargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import type { TargetInput } from "../src/target.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

let targets: TargetServer;
let store: ActionStore;
let planner: ExecutionPlanner;
let dispatcher: TargetDispatcher;
let runner: FunctionRunner;

beforeAll(async () => {
  targets = await startTargetServer();
});
afterAll(async () => {
  await targets.close();
});
beforeEach(() => {
  targets.calls.length = 0;
  store = createMemoryStore();
  planner = createExecutionPlanner(store);
  dispatcher = createTargetDispatcher({ logger: silentLogger });
  runner = createFunctionRunner({ planner, dispatcher, logger: silentLogger });
});
afterEach(async () => {
  planner.close();
  await dispatcher.close();
});

const target = (path: string, extra: Partial<TargetInput> = {}) =>
  store.createTarget({ name: path, type: "call", endpoint: targets.endpoint(path), timeoutMs: 2000, ...extra });
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("runClaimsFunction", () => {
  it("sends the function payload and combines the answers into one response, as ZITADEL does", async () => {
    targets.route("/claims-1", {
      body: {
        append_claims: [
          { key: "department", value: "research" },
          { key: "email", value: "override@example.com" },
          { key: "urn:zitadel:iam:org:id", value: "forged" },
        ],
        append_log_claims: ["first was here"],
        set_user_metadata: [{ key: "seen", value: b64("yes") }],
      },
    });
    targets.route("/claims-2", { body: { append_claims: [{ key: "level", value: 3 }, { key: "department", value: "later" }] } });
    const a = await target("/claims-1");
    const b = await target("/claims-2");
    await store.setExecution({ type: "function", name: "preuserinfo" }, [{ target: a.id }, { target: b.id }]);
    const result = await runClaimsFunction(
      runner,
      "preuserinfo",
      { userinfo: { sub: "u1", email: "ada@example.com" }, user: { id: "u1" }, application: { client_id: "app-1" } },
      { sub: "u1", email: "ada@example.com" },
    );
    const payload = {
      function: "function/preuserinfo",
      userinfo: { sub: "u1", email: "ada@example.com" },
      user: { id: "u1" },
      application: { client_id: "app-1" },
    };
    expect(targets.callsTo("/claims-1")[0]!.json).toEqual(payload);
    // The second target gets the response so far.
    expect(targets.callsTo("/claims-2")[0]!.json).toEqual({
      ...payload,
      response: {
        set_user_metadata: [{ key: "seen", value: b64("yes") }],
        append_claims: [
          { key: "department", value: "research" },
          { key: "email", value: "override@example.com" },
          { key: "urn:zitadel:iam:org:id", value: "forged" },
        ],
        append_log_claims: ["first was here"],
      },
    });
    // Its append_claims replace the first target's; what it leaves out (logs, metadata) is kept.
    // Claims under urn:zitadel:iam are skipped without a log line, existing ones are logged.
    expect(result.claims).toEqual({
      sub: "u1",
      email: "ada@example.com",
      level: 3,
      department: "later",
      "urn:zitadel:iam:action:function/preuserinfo:log": ["first was here"],
    });
    expect(result.metadata).toEqual([{ key: "seen", value: new Uint8Array(Buffer.from("yes")) }]);
  });

  it("skips reserved claims silently and logs existing ones and metadata it cannot set", async () => {
    targets.route("/one", {
      body: {
        append_claims: [{ key: "urn:zitadel:iam:org:id", value: "forged" }, { key: "email", value: "x" }, { key: "new", value: { nested: true } }],
        set_user_metadata: [{ key: "", value: b64("v") }],
        append_log_claims: ["mine"],
      },
    });
    const t = await target("/one");
    await store.setExecution({ type: "function", name: "preaccesstoken" }, [{ target: t.id }]);
    const result = await runClaimsFunction(runner, "preaccesstoken", {}, { email: "a@b.c" });
    expect(result.claims).toEqual({
      email: "a@b.c",
      new: { nested: true },
      "urn:zitadel:iam:action:function/preaccesstoken:log": ['failed to set user metadata key ""', 'key "email" already exists', "mine"],
    });
    expect(result.metadata).toEqual([]);
  });

  it("reads answers as Go does: other members ignored, keys case-insensitive, null clears", async () => {
    // A target that answers the payload it received (ZITADEL's examples do, to change nothing) ...
    targets.route("/echo", (req) => ({ body: req.json }));
    // ... and one written as a Go struct without JSON tags (an older ZITADEL guide).
    targets.route("/go", { body: { Set_User_Metadata: [{ Key: "key", Value: b64("value") }], APPEND_CLAIMS: [{ Key: "c", Value: 1 }], extra: "ignored" } });
    targets.route("/clear", { body: { append_claims: null } });
    const echo = await target("/echo");
    const go = await target("/go");
    const clear = await target("/clear");
    await store.setExecution({ type: "function", name: "preuserinfo" }, [{ target: echo.id }, { target: go.id }]);
    const result = await runClaimsFunction(runner, "preuserinfo", { userinfo: { sub: "u" }, user: { id: "u" }, user_metadata: [], user_grants: [] }, { sub: "u" });
    expect(targets.callsTo("/echo")[0]!.json).toEqual({ function: "function/preuserinfo", userinfo: { sub: "u" }, user: { id: "u" } }); // empty lists left out
    expect(result.claims).toEqual({ sub: "u", c: 1 });
    expect(result.metadata).toEqual([{ key: "key", value: new Uint8Array(Buffer.from("value")) }]);
    await store.setExecution({ type: "function", name: "preuserinfo" }, [{ target: go.id }, { target: clear.id }]);
    const cleared = await runClaimsFunction(runner, "preuserinfo", {}, {});
    expect(cleared.claims).toEqual({});
    expect(cleared.metadata).toEqual([{ key: "key", value: new Uint8Array(Buffer.from("value")) }]);
  });

  it("returns the claims unchanged when no execution exists", async () => {
    const result = await runClaimsFunction(runner, "preaccesstoken", {}, { sub: "u1" });
    expect(result).toEqual({ claims: { sub: "u1" }, metadata: [], logs: [] });
  });

  it("fails an interrupting target's function with FailedPrecondition, and skips a non-interrupting one", async () => {
    targets.route("/down", { status: 500 });
    targets.route("/ok", { body: { append_claims: [{ key: "k", value: "v" }] } });
    const down = await target("/down", { interruptOnError: true });
    const ok = await target("/ok");
    await store.setExecution({ type: "function", name: "preaccesstoken" }, [{ target: down.id }, { target: ok.id }]);
    await expect(runClaimsFunction(runner, "preaccesstoken", {}, {})).rejects.toMatchObject({ code: Code.FailedPrecondition });
    await store.updateTarget(down.id, { interruptOnError: false });
    expect((await runClaimsFunction(runner, "preaccesstoken", {}, {})).claims).toEqual({ k: "v" });
  });

  it("fails an interrupting target whose answer breaks the contract, and skips a non-interrupting one", async () => {
    const t = await target("/bad", { interruptOnError: true });
    await store.setExecution({ type: "function", name: "preuserinfo" }, [{ target: t.id }]);
    for (const body of [
      { append_claims: "nope" },
      { append_claims: [{ key: 5 }] },
      { set_user_metadata: [{ key: "k", value: "not base64!" }] },
      { append_log_claims: [1] },
      [1, 2],
    ]) {
      targets.route("/bad", { body });
      const error = await runClaimsFunction(runner, "preuserinfo", {}, {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.FailedPrecondition);
    }
    // Without interruptOnError the broken answer is skipped: the response so far stays.
    targets.route("/good", { body: { append_claims: [{ key: "kept", value: true }] } });
    const good = await target("/good");
    await store.updateTarget(t.id, { interruptOnError: false });
    await store.setExecution({ type: "function", name: "preuserinfo" }, [{ target: good.id }, { target: t.id }]);
    expect((await runClaimsFunction(runner, "preuserinfo", {}, {})).claims).toEqual({ kept: true });
  });
});

describe("runSamlFunction", () => {
  it("appends attributes and collects metadata", async () => {
    targets.route("/saml", {
      body: {
        append_attribute: [{ name: "role", name_format: "urn:oasis:names:tc:SAML:2.0:attrname-format:basic", value: ["admin", "dev"] }],
        set_user_metadata: [{ key: "k", value: b64("v") }],
      },
    });
    const t = await target("/saml");
    await store.setExecution({ type: "function", name: "presamlresponse" }, [{ target: t.id }]);
    const result = await runSamlFunction(runner, { user: { id: "u1" } }, [{ name: "email", name_format: "", value: ["a@b.c"] }]);
    expect(targets.callsTo("/saml")[0]!.json).toEqual({ function: "function/presamlresponse", user: { id: "u1" } });
    expect(result.attributes[1]!.name_format).toBe("urn:oasis:names:tc:SAML:2.0:attrname-format:basic");
    expect(result.attributes.map((a) => a.name)).toEqual(["email", "role"]);
    expect(result.attributes[1]!.value).toEqual(["admin", "dev"]);
    expect(result.metadata).toEqual([{ key: "k", value: new Uint8Array(Buffer.from("v")) }]);
  });
});

describe("FunctionRunner", () => {
  it("fires async targets and reports webhooks by status only", async () => {
    targets.route("/hook", { body: { ignored: true } });
    const hook = await target("/hook", { type: "webhook" });
    const fire = await target("/fire", { type: "async" });
    await store.setExecution({ type: "function", name: "preuserinfo" }, [{ target: hook.id }, { target: fire.id }]);
    expect(await runner.run("preuserinfo", { x: 1 })).toEqual([]);
    await targets.waitFor("/fire");
    await dispatcher.idle();
    expect(targets.calls.map((c) => c.path).sort()).toEqual(["/fire", "/hook"]);
  });
});
