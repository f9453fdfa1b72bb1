// Runs the curl commands of ZITADEL's guide "Test Actions Response"
// (docs/guides/integrate/actions/testing-response, the version that sets an execution on
// /zitadel.user.v2.UserService/AddHumanUser) with the real curl against the sample server.
// Only the placeholders are substituted: https://$CUSTOM-DOMAIN (the sample server),
// <TOKEN> (its admin token), http://localhost:8090/webhook (a loopback target server) and
// <TargetID returned> (the ID the first command answered).
import { exec } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../src/logger.js";
import { type SampleServer, startSampleServer } from "../src/sample/sample-server.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

const execAsync = promisify(exec);

/** The three commands as the guide prints them. */
const guide = {
  createTarget: `curl -L -X POST 'https://$CUSTOM-DOMAIN/v2beta/actions/targets' \\
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
}'`,
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
  addUser: `curl -L -X PUT 'https://$CUSTOM-DOMAIN/v2/users/human' \\
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
}'`,
};

let server: SampleServer;
let targets: TargetServer;
let targetId = "";

beforeAll(async () => {
  targets = await startTargetServer();
  server = await startSampleServer({ logger: silentLogger, adminToken: "guide-token" });
});
afterAll(async () => {
  await server?.close();
  await targets?.close();
});

/** Substitutes the guide's placeholders and runs the command with curl; resolves the status and the JSON answer. */
async function runGuideCommand(command: string): Promise<{ status: number; json: any }> {
  const substituted = command
    .replaceAll("https://$CUSTOM-DOMAIN", server.url)
    .replaceAll("<TOKEN>", server.adminToken)
    .replaceAll("http://localhost:8090/webhook", targets.endpoint("/webhook"))
    .replaceAll("<TargetID returned>", targetId);
  expect(substituted).not.toMatch(/\$CUSTOM-DOMAIN|<TOKEN>|<TargetID returned>|localhost:8090/);
  // -sS: no progress meter; --max-time: never hang the suite; -w: the status on a line of its own.
  const curl = substituted.replace(/^curl /, "curl -sS --max-time 20 -w '\\n%{http_code}' ");
  const { stdout } = await execAsync(curl, { timeout: 30_000 });
  const newline = stdout.lastIndexOf("\n");
  return { status: Number(stdout.slice(newline + 1)), json: JSON.parse(stdout.slice(0, newline)) };
}

describe('ZITADEL guide "Test Actions Response" against the sample server', () => {
  it("1. creates the target", async () => {
    const { status, json } = await runGuideCommand(guide.createTarget);
    expect(status).toBe(200);
    expect(json).toEqual({ id: expect.stringMatching(/^\d+$/), creationDate: expect.any(String), signingKey: expect.stringMatching(/^[A-Za-z0-9]{36}$/) });
    targetId = json.id;
    expect(await server.store.getTarget(targetId)).toMatchObject({
      name: "local webhook",
      type: "webhook",
      interruptOnError: true,
      endpoint: targets.endpoint("/webhook"),
      timeoutMs: 10_000,
    });
  });

  it("2. sets the execution on the response of AddHumanUser", async () => {
    const { status, json } = await runGuideCommand(guide.setExecution);
    expect(status).toBe(200);
    expect(json).toEqual({ setDate: expect.any(String) });
    expect((await server.store.getExecution("response/zitadel.user.v2.UserService/AddHumanUser"))?.targets).toEqual([{ target: targetId }]);
  });

  it("3. the example call as printed is rejected, as ZITADEL rejects it: the guide puts the profile under userId", async () => {
    const { status, json } = await runGuideCommand(guide.addUser);
    expect(status).toBe(400);
    expect(json).toEqual({ code: 3, message: expect.stringMatching(/user_id.*expected string/), details: [] });
    expect(targets.callsTo("/webhook")).toEqual([]);
  });

  it("3. the example call with the profile (as the guide's expected output shows) calls the target with the response", async () => {
    const { status, json } = await runGuideCommand(guide.addUser.replace('"userId": {', '"profile": {'));
    expect(status).toBe(200);
    expect(json.userId).toMatch(/^\d+$/);
    const [call] = await targets.waitFor("/webhook", 1);
    const payload = call!.json;
    expect(payload.fullMethod).toBe("/zitadel.user.v2.UserService/AddHumanUser");
    expect(payload.instanceID).toBe("sample-instance");
    expect(payload.request).toEqual({
      profile: { givenName: "Example_given", familyName: "Example_family" },
      email: { email: "example@example.com" },
    });
    expect(payload.response).toMatchObject({ userId: json.userId, details: { sequence: "1", resourceOwner: "sample-org" } });
    expect(payload.headers["Content-Type"]).toEqual(["application/json"]);
    expect(call!.headers["zitadel-signature"]).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
  });
});
