// The public-key RPCs of zitadel.action.v2 (AddPublicKey, ActivatePublicKey, DeactivatePublicKey, RemovePublicKey,
// ListPublicKeys) and payload_type, over Connect, gRPC and ZITADEL's REST paths.
import { generateKeyPairSync } from "node:crypto";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PublicKeyFieldName } from "../gen/zitadel/action/v2/query_pb.js";
import { PayloadType } from "../gen/zitadel/action/v2/target_pb.js";
import { TimestampFilterMethod } from "../gen/zitadel/filter/v2/filter_pb.js";
import { clearStore } from "./helpers/clear-store.js";
import { type ActionClient, type Protocol, type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

let h: SampleHarness;
const spki = { type: "spki", format: "pem" } as const;
let rsaPem: string;
let ecPem: string;

beforeAll(async () => {
  h = await startSampleHarness();
  rsaPem = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export(spki) as string;
  ecPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export(spki) as string;
});
afterAll(async () => {
  await h.close();
});
beforeEach(async () => {
  await clearStore(h.server.store);
});

async function codeOf(promise: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await promise;
    return "ok";
  } catch (e) {
    return ConnectError.from(e).code;
  }
}

const bytes = (text: string) => new TextEncoder().encode(text);
const webhook = (name: string, payloadType = PayloadType.JWE) => ({
  name,
  targetType: { case: "restWebhook" as const, value: { interruptOnError: true } },
  endpoint: "http://127.0.0.1:9/hook",
  timeout: { seconds: 5n },
  payloadType,
});

describe.each(["connect", "grpc"] as Protocol[])("public keys over %s", (protocol) => {
  let client: ActionClient;
  beforeAll(() => {
    client = h.actions("v2", protocol);
  });

  it("adds, activates, deactivates and removes keys with ZITADEL's rules", async () => {
    const { id: targetId } = await client.createTarget(webhook("t"));
    const a = await client.addPublicKey({ targetId, publicKey: bytes(rsaPem) });
    const b = await client.addPublicKey({ targetId: ` ${targetId} `, publicKey: bytes(ecPem) }); // IDs are trimmed, as in ZITADEL
    expect(a.keyId).toMatch(/^\d+$/);
    expect(a.creationDate).toBeDefined();
    let keys = (await client.listPublicKeys({ targetId, pagination: { asc: true } })).publicKeys;
    expect(keys.map((k) => [k.keyId, k.active, new TextDecoder().decode(k.publicKey)])).toEqual([
      [a.keyId, false, rsaPem],
      [b.keyId, false, ecPem],
    ]);
    expect(keys[0]!.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(keys[0]!.expirationDate).toBeUndefined();
    const activated = await client.activatePublicKey({ targetId, keyId: a.keyId });
    // Activating the active key changes nothing.
    expect((await client.activatePublicKey({ targetId, keyId: a.keyId })).changeDate).toEqual(activated.changeDate);
    await client.activatePublicKey({ targetId, keyId: b.keyId });
    keys = (await client.listPublicKeys({ targetId, pagination: { asc: true } })).publicKeys;
    expect(keys.map((k) => k.active)).toEqual([false, true]);
    // The active key cannot be removed; an inactive one can, and a missing one is no error.
    expect(await codeOf(client.removePublicKey({ targetId, keyId: b.keyId }))).toBe(Code.FailedPrecondition);
    expect((await client.removePublicKey({ targetId, keyId: a.keyId })).deletionDate).toBeDefined();
    expect((await client.removePublicKey({ targetId, keyId: a.keyId })).deletionDate).toBeUndefined();
    expect((await client.removePublicKey({ targetId: "404", keyId: a.keyId })).deletionDate).toBeUndefined();
    await client.deactivatePublicKey({ targetId, keyId: b.keyId });
    expect((await client.listPublicKeys({ targetId })).publicKeys.map((k) => k.active)).toEqual([false]);
    expect((await client.removePublicKey({ targetId, keyId: b.keyId })).deletionDate).toBeDefined();
    // Deleting a target deletes its keys.
    const k = await client.addPublicKey({ targetId, publicKey: bytes(ecPem) });
    await client.activatePublicKey({ targetId, keyId: k.keyId });
    await client.deleteTarget({ id: targetId });
    expect((await client.listPublicKeys({ targetId })).publicKeys).toEqual([]);
  });

  it("answers bad requests with precise codes", async () => {
    const { id: targetId } = await client.createTarget(webhook("t"));
    const { keyId } = await client.addPublicKey({ targetId, publicKey: bytes(ecPem) });
    const past = timestampFromDate(new Date(Date.now() - 60_000));
    const cases: [string, Promise<unknown>, Code][] = [
      ["empty target_id", client.addPublicKey({ targetId: " ", publicKey: bytes(ecPem) }), Code.InvalidArgument],
      ["unknown target", client.addPublicKey({ targetId: "404", publicKey: bytes(ecPem) }), Code.NotFound],
      ["empty key", client.addPublicKey({ targetId, publicKey: new Uint8Array() }), Code.InvalidArgument],
      ["not PEM", client.addPublicKey({ targetId, publicKey: bytes("ssh-rsa AAAA") }), Code.InvalidArgument],
      ["too long", client.addPublicKey({ targetId, publicKey: bytes(ecPem.padEnd(8193, "\n")) }), Code.InvalidArgument],
      ["an expiration in the past", client.addPublicKey({ targetId, publicKey: bytes(ecPem), expirationDate: past }), Code.InvalidArgument],
      ["empty key_id", client.activatePublicKey({ targetId, keyId: "" }), Code.InvalidArgument],
      ["unknown key", client.activatePublicKey({ targetId, keyId: "404" }), Code.NotFound],
      ["unknown target", client.deactivatePublicKey({ targetId: "404", keyId }), Code.NotFound],
      ["key_id over 200 characters", client.removePublicKey({ targetId, keyId: "k".repeat(201) }), Code.InvalidArgument],
      ["empty target_id", client.listPublicKeys({ targetId: "" }), Code.InvalidArgument],
      ["a limit over 1000", client.listPublicKeys({ targetId, pagination: { limit: 1001 } }), Code.InvalidArgument],
      ["an unknown sorting column", client.listPublicKeys({ targetId, sortingColumn: 9 as PublicKeyFieldName }), Code.InvalidArgument],
      ["an empty filter", client.listPublicKeys({ targetId, filters: [{}] }), Code.InvalidArgument],
      [
        "a timestamp filter without a time",
        client.listPublicKeys({ targetId, filters: [{ filter: { case: "expirationDateFilter", value: {} } }] }),
        Code.InvalidArgument,
      ],
    ];
    for (const [why, call, code] of cases) expect(await codeOf(call), why).toBe(code);
    expect((await client.listPublicKeys({ targetId })).publicKeys.length).toBe(1);
  });

  it("lists keys sorted, filtered and paginated as ZITADEL's lists", async () => {
    const { id: targetId } = await client.createTarget(webhook("t"));
    const in1h = new Date(Date.now() + 3_600_000);
    const in2h = new Date(Date.now() + 7_200_000);
    const never = await client.addPublicKey({ targetId, publicKey: bytes(ecPem) });
    const late = await client.addPublicKey({ targetId, publicKey: bytes(rsaPem), expirationDate: timestampFromDate(in2h) });
    const soon = await client.addPublicKey({ targetId, publicKey: bytes(ecPem), expirationDate: timestampFromDate(in1h) });
    await client.activatePublicKey({ targetId, keyId: late.keyId });
    const ids = async (request: Parameters<ActionClient["listPublicKeys"]>[0]) => {
      const answer = await client.listPublicKeys({ targetId, ...request });
      return { total: answer.pagination?.totalResult, ids: answer.publicKeys.map((k) => k.keyId) };
    };
    // Default: creation date, descending.
    expect(await ids({})).toEqual({ total: 3n, ids: [soon.keyId, late.keyId, never.keyId] });
    expect(await ids({ pagination: { asc: true, limit: 2, offset: 1n } })).toEqual({ total: 3n, ids: [late.keyId, soon.keyId] });
    // By expiration date: a key that never expires comes last.
    expect(await ids({ sortingColumn: PublicKeyFieldName.EXPIRATION_DATE, pagination: { asc: true } })).toEqual({
      total: 3n,
      ids: [soon.keyId, late.keyId, never.keyId],
    });
    expect((await ids({ sortingColumn: PublicKeyFieldName.CHANGE_DATE })).ids[0]).toBe(late.keyId);
    // Filters: all must match.
    expect((await ids({ filters: [{ filter: { case: "activeFilter", value: true } }] })).ids).toEqual([late.keyId]);
    expect((await ids({ filters: [{ filter: { case: "activeFilter", value: false } }], pagination: { asc: true } })).ids).toEqual([
      never.keyId,
      soon.keyId,
    ]);
    expect((await ids({ filters: [{ filter: { case: "keyIdsFilter", value: { ids: [never.keyId, "404"] } } }] })).ids).toEqual([never.keyId]);
    const expiring = (method: TimestampFilterMethod, at: Date) => ({
      filter: { case: "expirationDateFilter" as const, value: { timestamp: timestampFromDate(at), method } },
    });
    const between = new Date(Date.now() + 5_400_000);
    expect((await ids({ filters: [expiring(TimestampFilterMethod.BEFORE, between)] })).ids).toEqual([soon.keyId]);
    expect((await ids({ filters: [expiring(TimestampFilterMethod.AFTER, between)], pagination: { asc: true } })).ids).toEqual([
      never.keyId,
      late.keyId,
    ]);
    expect((await ids({ filters: [expiring(TimestampFilterMethod.EQUALS, in2h)] })).ids).toEqual([late.keyId]);
    expect(
      (await ids({ filters: [expiring(TimestampFilterMethod.AFTER, between), { filter: { case: "activeFilter", value: false } }] })).ids,
    ).toEqual([never.keyId]);
    // The expiration date comes back as it was set, to the millisecond.
    const listed = (await client.listPublicKeys({ targetId, filters: [{ filter: { case: "keyIdsFilter", value: { ids: [soon.keyId] } } }] }))
      .publicKeys[0]!;
    expect(timestampDate(listed.expirationDate!).getTime()).toBe(in1h.getTime());
  });

  it("sets and returns payload_type; PAYLOAD_TYPE_UNSPECIFIED creates JSON targets and changes nothing on update", async () => {
    const jwt = await client.createTarget(webhook("jwt", PayloadType.JWT));
    const plain = await client.createTarget(webhook("plain", PayloadType.UNSPECIFIED));
    expect((await client.getTarget({ id: jwt.id })).target?.payloadType).toBe(PayloadType.JWT);
    expect((await client.getTarget({ id: plain.id })).target?.payloadType).toBe(PayloadType.JSON);
    await client.updateTarget({ id: jwt.id, name: "jwt2" });
    expect((await client.getTarget({ id: jwt.id })).target?.payloadType).toBe(PayloadType.JWT);
    await client.updateTarget({ id: jwt.id, payloadType: PayloadType.JWE });
    expect((await client.listTargets({})).targets.map((t) => t.payloadType).sort()).toEqual([PayloadType.JSON, PayloadType.JWE]);
    // v2beta has no payload_type: it sees the target, and its updates keep the payload type.
    const beta = h.actions("v2beta", protocol);
    expect((await beta.getTarget({ id: jwt.id })).target).not.toHaveProperty("payloadType");
    await beta.updateTarget({ id: jwt.id, timeout: { seconds: 7n } });
    expect((await client.getTarget({ id: jwt.id })).target?.payloadType).toBe(PayloadType.JWE);
  });
});

describe("public keys over REST", () => {
  it("serves ZITADEL's paths, with the key as base64 in JSON", async () => {
    const target = { name: "rest", restWebhook: { interruptOnError: true }, endpoint: "http://127.0.0.1:9/hook", timeout: "5s" };
    const created = await h.rest("POST", "/v2/actions/targets", { ...target, payloadType: "PAYLOAD_TYPE_JWE" }, h.auth);
    expect(created.status).toBe(200);
    const base = `/v2/actions/targets/${created.json.id}/publickeys`;
    const expirationDate = new Date(Date.now() + 3_600_000).toISOString();
    const added = await h.rest("POST", base, { publicKey: Buffer.from(rsaPem).toString("base64"), expirationDate }, h.auth);
    expect(added.status).toBe(200);
    expect(added.json).toEqual({ keyId: expect.stringMatching(/^\d+$/), creationDate: expect.any(String) });
    const keyId = added.json.keyId as string;
    const activated = await h.rest("POST", `${base}/${keyId}/activate`, undefined, h.auth);
    expect(activated.status).toBe(200);
    expect(activated.json).toEqual({ changeDate: expect.any(String) });
    const search = await h.rest("POST", `${base}/search`, { filters: [{ activeFilter: true }], sortingColumn: "PUBLIC_KEY_FIELD_NAME_EXPIRATION_DATE" }, h.auth);
    expect(search.status).toBe(200);
    expect(search.json).toEqual({
      pagination: { totalResult: "1", appliedLimit: "100" },
      publicKeys: [
        {
          keyId,
          active: true,
          publicKey: Buffer.from(rsaPem).toString("base64"),
          fingerprint: expect.stringMatching(/^SHA256:/),
          expirationDate,
          creationDate: added.json.creationDate,
          changeDate: activated.json.changeDate,
        },
      ],
    });
    const active = await h.rest("DELETE", `${base}/${keyId}`, undefined, h.auth);
    expect(active.status).toBe(400);
    expect(active.json.code).toBe(Code.FailedPrecondition);
    expect((await h.rest("POST", `${base}/${keyId}/deactivate`, undefined, h.auth)).status).toBe(200);
    const removed = await h.rest("DELETE", `${base}/${keyId}`, undefined, h.auth);
    expect(removed.status).toBe(200);
    expect(removed.json).toEqual({ deletionDate: expect.any(String) });
    const bad = await h.rest("POST", base, { publicKey: Buffer.from("hello").toString("base64") }, h.auth);
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/public_key/);
    const missing = await h.rest("POST", "/v2/actions/targets/404/publickeys/1/activate", undefined, h.auth);
    expect(missing.status).toBe(404);
    expect((await h.rest("POST", base, { publicKey: Buffer.from(ecPem).toString("base64") })).status).toBe(401);
    // v2beta has no public keys.
    expect((await h.rest("POST", `/v2beta/actions/targets/${created.json.id}/publickeys`, { publicKey: "" }, h.auth)).status).toBe(404);
  });
});
