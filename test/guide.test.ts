// Runs the curl commands of the three published versions of ZITADEL's guide "Test Actions Response"
// (docs/guides/integrate/actions/testing-response) with the real curl against the sample server:
//
// - A (oldest): targets of the execution as objects, `[{"target": "<id>"}]`, on the response of
//   AddHumanUser; the example call sends the profile under "userId" (a typo of the guide).
// - B: targets as strings, `["<id>"]`, otherwise as A.
// - C (newest): the execution on the response of CreateUser, called with POST /v2/users/new.
//
// The commands are the guide's text; only the placeholders are substituted: https://$CUSTOM-DOMAIN
// (the sample server), <TOKEN> (its admin token), http://localhost:8090/webhook (a loopback target
// server) and <TargetID returned> (the ID the first command answered). Each version gets its own
// sample server, as each creates the same target name and user.
import { exec } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Logger } from "../src/logger.js";
import { type SampleServer, startSampleServer } from "../src/sample/sample-server.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

const execAsync = promisify(exec);

/** The first command, the same in all three versions. */
const createTarget = `curl -L -X POST 'https://$CUSTOM-DOMAIN/v2beta/actions/targets' \\
-H 'Content-Type: application/json' \\
-H 'Accept: application/json' \\
-H 'Authorization: Bearer <TOKEN>' \\
--data-raw '{
  "name": "local webhook",
  "restWebhook": {
    "interruptOnError": true    
  },
  "endpoint": "http://localhost:8090/webhook",
  "timeout": "10s"
}'`;

/** The example call of versions A and B, with the profile under "userId" as printed. */
const addHumanUser = `curl -L -X PUT 'https://$CUSTOM-DOMAIN/v2/users/human' \\
-H 'Content-Type: application/json' \\
-H 'Accept: application/json' \\
-H 'Authorization: Bearer <TOKEN>' \\
--data-raw '{
    "userId": {
        "givenName": "Example_given",
        "familyName": "Example_family"
    },
    "email": {
        "email": "example@example.com"
    }
}'`;

interface GuideVersion {
  readonly createTarget: string;
  readonly setExecution: string;
  readonly exampleCall: string;
}

const versionA: GuideVersion = {
  createTarget,
  setExecution: `curl -L -X PUT 'https://$CUSTOM-DOMAIN/v2beta/actions/executions' \\
-H 'Content-Type: application/json' \\
-H 'Accept: application/json' \\
-H 'Authorization: Bearer <TOKEN>' \\
--data-raw '{
    "condition": {
        "response": {
            "method": "/zitadel.user.v2.UserService/AddHumanUser"
        }
    },
    "targets": [
        {
            "target": "<TargetID returned>"
        }
    ]
}'`,
  exampleCall: addHumanUser,
};

const versionB: GuideVersion = {
  createTarget,
  setExecution: `curl -L -X PUT 'https://$CUSTOM-DOMAIN/v2beta/actions/executions' \\
-H 'Content-Type: application/json' \\
-H 'Accept: application/json' \\
-H 'Authorization: Bearer <TOKEN>' \\
--data-raw '{
    "condition": {
        "response": {
            "method": "/zitadel.user.v2.UserService/AddHumanUser"
        }
    },
    "targets": [
        "<TargetID returned>"
    ]
}'`,
  exampleCall: addHumanUser,
};

const versionC: GuideVersion = {
  createTarget,
  setExecution: `curl -L -X PUT 'https://$CUSTOM-DOMAIN/v2beta/actions/executions' \\
-H 'Content-Type: application/json' \\
-H 'Accept: application/json' \\
-H 'Authorization: Bearer <TOKEN>' \\
--data-raw '{
    "condition": {
        "response": {
            "method": "/zitadel.user.v2.UserService/CreateUser"
        }
    },
    "targets": [
        "<TargetID returned>"
    ]
}'`,
  exampleCall: `curl -L -X POST 'https://$CUSTOM-DOMAIN/v2/users/new' \\
-H 'Content-Type: application/json' \\
-H 'Accept: application/json' \\
-H 'Authorization: Bearer <TOKEN>' \\
--data-raw '{
    "organizationId": "336392597046099971",
    "human":
    {
        "profile":
        {
            "givenName": "Minnie",
            "familyName": "Mouse",
            "nickName": "Mini",
            "displayName": "Minnie Mouse",
            "preferredLanguage": "en",
            "gender": "GENDER_FEMALE"
        },
        "email":
        {
            "email": "mini@mouse.com"
        }
    }
}'`,
};

interface LogEntry {
  readonly level: string;
  readonly message: string;
}

/** A sample server and a loopback target for one version of the guide, with a runner of its commands. */
function guideSetup() {
  const state = {
    server: undefined as unknown as SampleServer,
    targets: undefined as unknown as TargetServer,
    targetId: "",
    logs: [] as LogEntry[],
  };
  const keep = (level: string) => (message: string) => void state.logs.push({ level, message });
  const logger: Logger = { debug: () => {}, info: keep("info"), warn: keep("warn"), error: keep("error") };
  beforeAll(async () => {
    state.targets = await startTargetServer();
    state.server = await startSampleServer({ logger, adminToken: "guide-token" });
  });
  afterAll(async () => {
    await state.server?.close();
    await state.targets?.close();
  });
  /** Substitutes the guide's placeholders and runs the command with curl; resolves the status and the JSON answer. */
  const run = async (command: string): Promise<{ status: number; json: any }> => {
    const substituted = command
      .replaceAll("https://$CUSTOM-DOMAIN", state.server.url)
      .replaceAll("<TOKEN>", state.server.adminToken)
      .replaceAll("http://localhost:8090/webhook", state.targets.endpoint("/webhook"))
      .replaceAll("<TargetID returned>", state.targetId);
    expect(substituted).not.toMatch(/\$CUSTOM-DOMAIN|<TOKEN>|<TargetID returned>|localhost:8090/);
    // -sS: no progress meter; --max-time: never hang the suite; -w: the status on a line of its own.
    const curl = substituted.replace(/^curl /, "curl -sS --max-time 20 -w '\\n%{http_code}' ");
    const { stdout } = await execAsync(curl, { timeout: 30_000 });
    const newline = stdout.lastIndexOf("\n");
    return { status: Number(stdout.slice(newline + 1)), json: JSON.parse(stdout.slice(0, newline)) };
  };
  /** Runs the first two commands of a version: creates the target and sets the execution on `method`. */
  const createTargetAndSetExecution = (version: GuideVersion, method: string) => {
    it("1. creates the target", async () => {
      const { status, json } = await run(version.createTarget);
      expect(status).toBe(200);
      expect(json).toEqual({ id: expect.stringMatching(/^\d+$/), creationDate: expect.any(String), signingKey: expect.stringMatching(/^[A-Za-z0-9]{36}$/) });
      state.targetId = json.id;
      expect(await state.server.store.getTarget(state.targetId)).toMatchObject({
        name: "local webhook",
        type: "webhook",
        interruptOnError: true,
        endpoint: state.targets.endpoint("/webhook"),
        timeoutMs: 10_000,
      });
    });

    it(`2. sets the execution on the response of ${method}`, async () => {
      const { status, json } = await run(version.setExecution);
      expect(status).toBe(200);
      expect(json).toEqual({ setDate: expect.any(String) });
      expect((await state.server.store.getExecution(`response/zitadel.user.v2.UserService/${method}`))?.targets).toEqual([{ target: state.targetId }]);
    });
  };
  return { state, run, createTargetAndSetExecution };
}

/** Checks the target call of the AddHumanUser example call of versions A and B. */
async function expectAddHumanUserPayload(targets: TargetServer, userId: string): Promise<void> {
  const [call] = await targets.waitFor("/webhook", 1);
  const payload = call!.json;
  expect(payload.fullMethod).toBe("/zitadel.user.v2.UserService/AddHumanUser");
  expect(payload.instanceID).toBe("sample-instance");
  expect(payload.request).toEqual({
    profile: { givenName: "Example_given", familyName: "Example_family" },
    email: { email: "example@example.com" },
  });
  expect(payload.response).toMatchObject({ userId, details: { sequence: "1", resourceOwner: "sample-org" } });
  expect(payload.headers["Content-Type"]).toEqual(["application/json"]);
  expect(call!.headers["zitadel-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
}

const typoWarning = "accepted the profile under userId, a known typo of the Test Actions Response guide";

describe('guide "Test Actions Response", version A (object targets, AddHumanUser)', () => {
  const { state, run, createTargetAndSetExecution } = guideSetup();
  createTargetAndSetExecution(versionA, "AddHumanUser");

  it("3. the example call as printed (profile under userId) creates the user and calls the target with the response", async () => {
    const { status, json } = await run(versionA.exampleCall);
    expect(status).toBe(200);
    expect(json.userId).toMatch(/^\d+$/);
    await expectAddHumanUserPayload(state.targets, json.userId);
    expect(state.logs.filter((l) => l.message === typoWarning)).toEqual([{ level: "warn", message: typoWarning }]);
  });
});

describe('guide "Test Actions Response", version B (string targets, AddHumanUser)', () => {
  const { state, run, createTargetAndSetExecution } = guideSetup();
  createTargetAndSetExecution(versionB, "AddHumanUser");

  it("3. the example call as printed (profile under userId) creates the user and calls the target with the response", async () => {
    const { status, json } = await run(versionB.exampleCall);
    expect(status).toBe(200);
    expect(json.userId).toMatch(/^\d+$/);
    await expectAddHumanUserPayload(state.targets, json.userId);
  });
});

describe('guide "Test Actions Response", version C (CreateUser)', () => {
  const { state, run, createTargetAndSetExecution } = guideSetup();
  createTargetAndSetExecution(versionC, "CreateUser");

  it("3. the example call creates the user in the given organization and calls the target with the response", async () => {
    const { status, json } = await run(versionC.exampleCall);
    expect(status).toBe(200);
    expect(json).toEqual({ id: expect.stringMatching(/^\d+$/), creationDate: expect.any(String) });
    const [call] = await state.targets.waitFor("/webhook", 1);
    const payload = call!.json;
    expect(payload.fullMethod).toBe("/zitadel.user.v2.UserService/CreateUser");
    expect(payload.instanceID).toBe("sample-instance");
    expect(payload.request).toEqual({
      organizationId: "336392597046099971",
      human: {
        profile: {
          givenName: "Minnie",
          familyName: "Mouse",
          nickName: "Mini",
          displayName: "Minnie Mouse",
          preferredLanguage: "en",
          gender: "GENDER_FEMALE",
        },
        email: { email: "mini@mouse.com" },
      },
    });
    expect(payload.response).toEqual({ id: json.id, creationDate: json.creationDate });
    expect(call!.headers["zitadel-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);

    const user = (await fetch(`${state.server.url}/v2/users/${json.id}`).then((r) => r.json())) as any;
    expect(user.user).toMatchObject({
      userId: json.id,
      username: "mini@mouse.com",
      details: { resourceOwner: "336392597046099971", creationDate: json.creationDate },
      human: { profile: { givenName: "Minnie", familyName: "Mouse", nickName: "Mini", gender: "GENDER_FEMALE" }, email: { email: "mini@mouse.com" } },
    });
    expect(state.logs.filter((l) => l.level === "warn")).toEqual([]);
  });
});

describe("well-formed requests are untouched by the guide's compatibility shims", () => {
  const { state, createTargetAndSetExecution } = guideSetup();
  createTargetAndSetExecution(versionB, "AddHumanUser");

  const post = async (path: string, body: unknown, method = "POST") => {
    const res = await fetch(state.server.url + path, {
      method,
      headers: { "content-type": "application/json", authorization: `Bearer ${state.server.adminToken}` },
      body: JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as any };
  };

  it("a string userId is the ID of the new user, with no warning", async () => {
    const { status, json } = await post("/v2/users/human", {
      userId: "my-own-id",
      profile: { givenName: "Given", familyName: "Family" },
      email: { email: "own@example.com" },
    });
    expect(status).toBe(200);
    expect(json.userId).toBe("my-own-id");
    const [call] = await state.targets.waitFor("/webhook", 1);
    expect(call!.json.request).toEqual({
      userId: "my-own-id",
      profile: { givenName: "Given", familyName: "Family" },
      email: { email: "own@example.com" },
    });
    expect(state.logs.filter((l) => l.level === "warn")).toEqual([]);
  });

  it("an object userId next to a profile is still rejected with 400", async () => {
    const { status, json } = await post("/v2/users/human", {
      userId: { givenName: "A", familyName: "B" },
      profile: { givenName: "Given", familyName: "Family" },
      email: { email: "both@example.com" },
    });
    expect(status).toBe(400);
    expect(json).toEqual({ code: 3, message: expect.stringMatching(/user_id.*expected string/), details: [] });
    expect(state.targets.callsTo("/webhook")).toHaveLength(1);
  });

  it("CreateUser needs an organization and answers machine users with 501", async () => {
    const human = { profile: { givenName: "A", familyName: "B" }, email: { email: "org@example.com" } };
    expect(await post("/v2/users/new", { human })).toMatchObject({ status: 400, json: { code: 3, message: expect.stringMatching(/organization_id/) } });
    expect(await post("/v2/users/new", { organizationId: "org-1" })).toMatchObject({ status: 400, json: { code: 3 } });
    expect(await post("/v2/users/new", { organizationId: "org-1", machine: { name: "robot" } })).toMatchObject({
      status: 501,
      json: { code: 12 },
    });
    const created = await post("/v2/users/new", { organizationId: "org-1", userId: "u-1", username: "alice", human });
    expect(created).toMatchObject({ status: 200, json: { id: "u-1" } });
  });
});
