// Two sample servers sharing one PostgreSQL database, as two replicas behind a load balancer.
import { exec } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decryptJwePayload } from "../src/keys/payload-verify.js";
import { silentLogger } from "../src/logger.js";
import { type SampleServer, startSampleServer } from "../src/sample/sample-server.js";
import { createTestDatabase, type TestDatabase } from "./helpers/postgres.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

const execAsync = promisify(exec);
const token = "replica-admin-token";
let db: TestDatabase;
let a: SampleServer;
let b: SampleServer;
let targets: TargetServer;

beforeAll(async () => {
  db = await createTestDatabase();
  targets = await startTargetServer();
  const options = { databaseUrl: db.url, adminToken: token, logger: silentLogger, eventWorker: { pollIntervalMs: 100 } };
  [a, b] = await Promise.all([startSampleServer(options), startSampleServer(options)]);
});
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await targets?.close();
  await db?.drop();
});

async function curl(server: SampleServer, method: string, path: string, body?: unknown): Promise<any> {
  const data = body === undefined ? "" : ` --data-raw '${JSON.stringify(body)}'`;
  const { stdout } = await execAsync(
    `curl -sS --max-time 10 -X ${method} '${server.url}${path}' -H 'Content-Type: application/json' -H 'Authorization: Bearer ${token}'${data}`,
  );
  return JSON.parse(stdout);
}

describe("sample servers sharing PostgreSQL", () => {
  it("apply executions set on one server on the other within 1 s, share events and the delivery log", async () => {
    const { id } = await curl(a, "POST", "/v2/actions/targets", {
      name: "shared", restWebhook: { interruptOnError: true }, endpoint: targets.endpoint("/shared"), timeout: "5s",
    });
    await curl(a, "PUT", "/v2/actions/executions", {
      condition: { request: { method: "/zitadel.user.v2.UserService/AddHumanUser" } }, targets: [id],
    });
    await curl(a, "PUT", "/v2/actions/executions", { condition: { event: { event: "user.human.added" } }, targets: [id] });
    await new Promise((r) => setTimeout(r, 1000));
    const user = await curl(b, "POST", "/v2/users/human", { profile: { givenName: "Rep", familyName: "Lica" }, email: { email: "rep@example.com" } });
    expect(user.userId).toMatch(/^\d+$/);
    const calls = await targets.waitFor("/shared", 2);
    expect(calls.map((c) => c.json.fullMethod ?? c.json.event_type)).toEqual(["/zitadel.user.v2.UserService/AddHumanUser", "user.human.added"]);
    // Both servers see the same target and both the calls B made.
    expect((await curl(b, "GET", `/v2/actions/targets/${id}`)).target.name).toBe("shared");
    let listed: any;
    for (let i = 0; i < 50; i++) {
      listed = await curl(a, "POST", "/v2/actions/targets/calls/search", { targetId: id });
      if (listed.calls?.length === 2) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(listed.calls.map((c: any) => c.trigger).sort()).toEqual(["/zitadel.user.v2.UserService/AddHumanUser", "user.human.added"]);
    // The event was delivered once, by one of the two workers.
    await new Promise((r) => setTimeout(r, 500));
    expect(targets.callsTo("/shared").length).toBe(2);
  });

  it("share signing keys: a JWE payload sent by one server verifies against the JWKS of the other", async () => {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const { id } = await curl(a, "POST", "/v2/actions/targets", {
      name: "sealed", restWebhook: { interruptOnError: true }, endpoint: targets.endpoint("/sealed"), timeout: "5s", payloadType: "PAYLOAD_TYPE_JWE",
    });
    const publicKey = Buffer.from(pair.publicKey.export({ type: "spki", format: "pem" }) as string).toString("base64");
    const { keyId } = await curl(a, "POST", `/v2/actions/targets/${id}/publickeys`, { publicKey });
    await curl(a, "POST", `/v2/actions/targets/${id}/publickeys/${keyId}/activate`);
    await curl(a, "PUT", "/v2/actions/executions", {
      condition: { request: { method: "/zitadel.user.v2.UserService/GetUserByID" } }, targets: [id],
    });
    // B calls the target once its plan has the execution and the key (until then the call fails).
    let answer: any;
    for (let i = 0; i < 50 && targets.callsTo("/sealed").length === 0; i++) {
      answer = await curl(b, "GET", "/v2/users/1");
      if (targets.callsTo("/sealed").length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(targets.callsTo("/sealed").length, JSON.stringify(answer)).toBe(1);
    const payload = await decryptJwePayload(targets.callsTo("/sealed")[0]!.body, { privateKey: pair.privateKey, jwks: `${a.url}/oauth/v2/keys` });
    expect(payload).toMatchObject({ fullMethod: "/zitadel.user.v2.UserService/GetUserByID", request: { userId: "1" } });
    expect(await curl(a, "GET", "/oauth/v2/keys")).toEqual(await curl(b, "GET", "/oauth/v2/keys"));
  });
});
