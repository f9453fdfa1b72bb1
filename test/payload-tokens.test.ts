// JWT and JWE payloads end to end: targets created over the ActionService v2 receive their payloads signed with the
// instance's key (published at /oauth/v2/keys) and encrypted to their active public key, and verify and decrypt them
// with the helpers of connect-actions and with jose directly.
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  compactDecrypt,
  compactVerify,
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
} from "jose";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PayloadType } from "../gen/zitadel/action/v2/target_pb.js";
import { verifySignature } from "../src/dispatch/signature.js";
import { decryptJwePayload, verifyJwtPayload } from "../src/keys/payload-verify.js";
import { clearStore } from "./helpers/clear-store.js";
import { addUser } from "./helpers/intercepted-server.js";
import { type ActionClient, type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

const addHumanUser = "/zitadel.user.v2.UserService/AddHumanUser";
const requestOf = (method: string) => ({
  conditionType: { case: "request" as const, value: { condition: { case: "method" as const, value: method } } },
});

let h: SampleHarness;
let client: ActionClient;
let jwksUrl: string;
let rsa: { publicKey: KeyObject; privateKey: KeyObject };
let ec: { publicKey: KeyObject; privateKey: KeyObject };
const pem = (key: KeyObject) => key.export({ type: "spki", format: "pem" }) as string;

beforeAll(async () => {
  h = await startSampleHarness();
  client = h.actions("v2");
  jwksUrl = `${h.server.url}/oauth/v2/keys`;
  rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  ec = generateKeyPairSync("ec", { namedCurve: "P-384" });
});
afterAll(async () => {
  await h.close();
});
beforeEach(async () => {
  await clearStore(h.server.store);
  h.targets.calls.length = 0;
  h.records.length = 0;
});

/** target creates an interrupting webhook on `path` with a payload type, called before AddHumanUser. */
async function target(path: string, payloadType: PayloadType, type: "restWebhook" | "restCall" = "restWebhook") {
  const created = await client.createTarget({
    name: path,
    targetType: { case: type, value: { interruptOnError: true } },
    endpoint: h.targets.endpoint(path),
    timeout: { seconds: 10n },
    payloadType,
  });
  await client.setExecution({ condition: requestOf(addHumanUser), targets: [created.id] });
  return created;
}

async function jwks(): Promise<JSONWebKeySet> {
  const res = await fetch(jwksUrl);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toBe("application/json");
  return (await res.json()) as JSONWebKeySet;
}

describe("JWT payloads", () => {
  it("sends the JSON payload as a JWT signed with the instance's key, which the JWKS publishes", async () => {
    const t = await target("/jwt", PayloadType.JWT);
    expect((await client.getTarget({ id: t.id })).target?.payloadType).toBe(PayloadType.JWT);
    await h.users().addHumanUser(addUser("Grace", "Hopper"));
    const [call] = h.targets.callsTo("/jwt");
    // As ZITADEL: Content-Type application/json, and the ZITADEL-Signature over the token.
    expect(call!.headers["content-type"]).toBe("application/json");
    verifySignature(call!.body, call!.headers["zitadel-signature"], t.signingKey);
    const header = decodeProtectedHeader(call!.body);
    const keys = await jwks();
    expect(keys.keys.length).toBe(1);
    expect(header).toEqual({ alg: "RS256", kid: keys.keys[0]!.kid, typ: "JWT" });
    // The helper returns the payload a JSON target would get.
    const payload = await verifyJwtPayload<{ fullMethod: string; instanceID: string; request: { profile: { givenName: string } } }>(call!.body, {
      jwks: jwksUrl,
    });
    expect(payload).toMatchObject({ fullMethod: addHumanUser, instanceID: "sample-instance", request: { profile: { givenName: "Grace" } } });
    // jose directly: the JWS payload is exactly the JSON body, with no claims added.
    const verified = await compactVerify(call!.body, createRemoteJWKSet(new URL(jwksUrl)));
    expect(JSON.parse(new TextDecoder().decode(verified.payload))).toEqual(payload);
    expect(Object.keys(payload as object)).not.toContain("iat");
  });

  it("refuses a token that was changed or signed with another key", async () => {
    await target("/jwt", PayloadType.JWT);
    await h.users().addHumanUser(addUser());
    const token = h.targets.callsTo("/jwt")[0]!.body;
    const [head, body, signature] = token.split(".");
    const forged = `${head}.${Buffer.from('{"fullMethod":"/evil"}').toString("base64url")}.${signature}`;
    await expect(verifyJwtPayload(forged, { jwks: jwksUrl })).rejects.toMatchObject({ code: Code.Unauthenticated });
    // Another key under the same kid.
    const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ format: "jwk" });
    const otherKeys = { keys: [{ ...stranger, kid: (await jwks()).keys[0]!.kid, alg: "RS256", use: "sig" }] };
    await expect(verifyJwtPayload(token, { jwks: otherKeys })).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(verifyJwtPayload(`${head}.${body}`, { jwks: jwksUrl })).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(verifyJwtPayload(token, { jwks: "http://127.0.0.1:9/keys" })).rejects.toMatchObject({ code: Code.Unavailable });
  });

  it("keeps the answer of a call target JSON", async () => {
    await target("/call", PayloadType.JWT, "restCall");
    h.targets.route("/call", async (call) => {
      const { request } = await verifyJwtPayload<{ request: { profile: { givenName: string; familyName: string } } }>(call.body, {
        jwks: jwksUrl,
      });
      return { body: { ...request, profile: { ...request.profile, givenName: request.profile.givenName.toUpperCase() } } };
    });
    const { userId } = await h.users().addHumanUser(addUser("ada", "Lovelace"));
    const user = await h.users().getUserByID({ userId });
    expect(user.user?.type.case === "human" && user.user.type.value.profile?.givenName).toBe("ADA");
  });

  it("signs event deliveries too", async () => {
    const created = await client.createTarget({
      name: "events",
      targetType: { case: "restWebhook", value: {} },
      endpoint: h.targets.endpoint("/events"),
      timeout: { seconds: 10n },
      payloadType: PayloadType.JWT,
    });
    await client.setExecution({
      condition: { conditionType: { case: "event", value: { condition: { case: "event", value: "user.human.added" } } } },
      targets: [created.id],
    });
    await h.users().addHumanUser(addUser("Edsger", "Dijkstra"));
    const [call] = await h.targets.waitFor("/events");
    expect(await verifyJwtPayload(call!.body, { jwks: jwksUrl })).toMatchObject({
      event_type: "user.human.added",
      event_payload: { firstName: "Edsger" },
    });
  });

  it("serves the JWKS to GET and HEAD only, with a short cache lifetime", async () => {
    await h.server.signingKeys.signingKey("sample-instance");
    const head = await fetch(jwksUrl, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("cache-control")).toBe("public, max-age=60");
    expect(await head.text()).toBe("");
    const post = await fetch(jwksUrl, { method: "POST" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
    for (const key of (await jwks()).keys) expect(key).not.toHaveProperty("d");
  });
});

describe("JWE payloads", () => {
  /** jweTarget creates a JWE target with one active key, and returns the target and the key's ID. */
  async function jweTarget(path: string, publicKey: KeyObject) {
    const t = await target(path, PayloadType.JWE);
    const { keyId } = await client.addPublicKey({ targetId: t.id, publicKey: new TextEncoder().encode(pem(publicKey)) });
    await client.activatePublicKey({ targetId: t.id, keyId });
    return { t, keyId };
  }

  it.each([
    ["an RSA key, with RSA-OAEP-256", "rsa", "RSA-OAEP-256"],
    ["an EC key, with ECDH-ES+A256KW", "ec", "ECDH-ES+A256KW"],
  ] as const)("encrypts the signed JWT to %s", async (_, kind, alg) => {
    const pair = kind === "rsa" ? rsa : ec;
    const { t, keyId } = await jweTarget(`/jwe-${kind}`, pair.publicKey);
    await h.users().addHumanUser(addUser("Barbara", "Liskov"));
    const [call] = h.targets.callsTo(`/jwe-${kind}`);
    expect(call!.headers["content-type"]).toBe("application/json");
    verifySignature(call!.body, call!.headers["zitadel-signature"], t.signingKey);
    // ECDH-ES adds the ephemeral public key of the exchange.
    const epk = kind === "ec" ? { epk: { kty: "EC", crv: "P-384", x: expect.any(String), y: expect.any(String) } } : {};
    expect(decodeProtectedHeader(call!.body)).toEqual({ alg, enc: "A256GCM", kid: keyId, typ: "JWT", cty: "JWT", ...epk });
    // The helper decrypts and verifies the JWT inside.
    const payload = await decryptJwePayload(call!.body, { privateKey: pair.privateKey, jwks: jwksUrl });
    expect(payload).toMatchObject({ fullMethod: addHumanUser, request: { profile: { givenName: "Barbara" } } });
    // A PEM private key, or a key chosen by kid, work alike.
    const privatePem = pair.privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    expect(await decryptJwePayload(call!.body, { privateKey: privatePem, jwks: jwksUrl })).toEqual(payload);
    expect(await decryptJwePayload(call!.body, { privateKey: (kid) => (kid === keyId ? privatePem : "none"), jwks: jwksUrl })).toEqual(payload);
    // jose directly: decrypt, then verify the nested JWT.
    const { plaintext, protectedHeader } = await compactDecrypt(call!.body, pair.privateKey);
    expect(protectedHeader.cty).toBe("JWT");
    const inner = new TextDecoder().decode(plaintext);
    expect(decodeProtectedHeader(inner)).toMatchObject({ alg: "RS256", typ: "JWT" });
    const verified = await compactVerify(inner, createRemoteJWKSet(new URL(jwksUrl)));
    expect(JSON.parse(new TextDecoder().decode(verified.payload))).toEqual(payload);
  });

  it("refuses a token encrypted to another key", async () => {
    await jweTarget("/jwe", rsa.publicKey);
    await h.users().addHumanUser(addUser());
    const token = h.targets.callsTo("/jwe")[0]!.body;
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    await expect(decryptJwePayload(token, { privateKey: other, jwks: jwksUrl })).rejects.toMatchObject({ code: Code.Unauthenticated });
    await expect(decryptJwePayload(token, { privateKey: "not a key", jwks: jwksUrl })).rejects.toMatchObject({ code: Code.InvalidArgument });
  });

  it("encrypts to the key activated last", async () => {
    const { t } = await jweTarget("/jwe", rsa.publicKey);
    const { keyId } = await client.addPublicKey({ targetId: t.id, publicKey: new TextEncoder().encode(pem(ec.publicKey)) });
    await client.activatePublicKey({ targetId: t.id, keyId });
    await h.users().addHumanUser(addUser());
    const [call] = h.targets.callsTo("/jwe");
    expect(decodeProtectedHeader(call!.body)).toMatchObject({ kid: keyId, alg: "ECDH-ES+A256KW" });
    expect(await decryptJwePayload(call!.body, { privateKey: ec.privateKey, jwks: jwksUrl })).toMatchObject({ fullMethod: addHumanUser });
  });

  it("fails the call, without calling the target, while the target has no active key", async () => {
    const t = await target("/jwe", PayloadType.JWE);
    const error = await h.users().addHumanUser(addUser()).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code).toBe(Code.FailedPrecondition);
    expect(error?.rawMessage).toBe("Execution failed");
    expect(h.targets.callsTo("/jwe")).toEqual([]);
    expect(h.records.at(-1)).toMatchObject({ targetId: t.id, status: 0, error: expect.stringContaining("no active public key") });
    // Once a key is active, calls go through; once it is deactivated, they fail again.
    const { keyId } = await client.addPublicKey({ targetId: t.id, publicKey: new TextEncoder().encode(pem(rsa.publicKey)) });
    await client.activatePublicKey({ targetId: t.id, keyId });
    await h.users().addHumanUser(addUser());
    expect(h.targets.callsTo("/jwe").length).toBe(1);
    await client.deactivatePublicKey({ targetId: t.id, keyId });
    await expect(h.users().addHumanUser(addUser())).rejects.toMatchObject({ code: Code.FailedPrecondition });
    expect(h.targets.callsTo("/jwe").length).toBe(1);
  });
});

// Last: verifiers that fetched the JWKS before a rotation learn of the new key only when they fetch it again.
describe("rotation", () => {
  it("publishes a rotated key at once and keeps the old one, so that both tokens verify", async () => {
    await target("/jwt", PayloadType.JWT);
    await h.users().addHumanUser(addUser());
    const before = await jwks();
    const rotated = await h.server.signingKeys.rotate("sample-instance");
    const after = await jwks();
    expect(after.keys.map((k) => k.kid)).toEqual([rotated.keyId, before.keys[0]!.kid]);
    await h.users().addHumanUser(addUser());
    const [first, second] = h.targets.callsTo("/jwt");
    expect(decodeProtectedHeader(first!.body).kid).toBe(before.keys[0]!.kid);
    expect(decodeProtectedHeader(second!.body).kid).toBe(rotated.keyId);
    for (const call of [first!, second!]) {
      expect(await verifyJwtPayload(call.body, { jwks: jwksUrl, jwksCooldownMs: 0 })).toMatchObject({ fullMethod: addHumanUser });
      await compactVerify(call.body, createLocalJWKSet(after));
    }
  });
});
