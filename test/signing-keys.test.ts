// The instances' signing keys (JWT and JWE payloads): generated on first use, rotated, published until they expire,
// in memory and in PostgreSQL.
import { createPublicKey } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { CompactSign, compactVerify, createLocalJWKSet } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { createMemorySigningKeySource, type SigningKeySource } from "../src/keys/signing-key-source.js";
import { createPostgresSigningKeySource } from "../src/postgres/signing-key-source.js";
import { codeOf } from "../src/testing/support.js";
import { newSchemaName, useTestDatabase } from "./helpers/postgres.js";
import { recordingLogger } from "./helpers/recording-logger.js";

const db = useTestDatabase();
const hour = 3_600_000;

type Options = { now: () => Date; algorithm?: "RS256" | "ES256"; schema?: string; cacheMs?: number };
type Factory = (options: Options) => Promise<SigningKeySource>;

const opened: SigningKeySource[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

const factories: [string, Factory][] = [
  ["memory", async (o) => createMemorySigningKeySource(o)],
  [
    "postgres",
    async (o) =>
      createPostgresSigningKeySource({ connectionString: db.url, logger: recordingLogger(), schema: o.schema ?? newSchemaName("k"), ...o }),
  ],
];

/** A clock that starts now and moves when told. */
function clock() {
  let offset = 0;
  return { now: () => new Date(Date.now() + offset), advance: (ms: number) => void (offset += ms) };
}

async function signs(source: SigningKeySource, instanceId: string): Promise<{ token: string; kid: string }> {
  const key = await source.signingKey(instanceId);
  const token = await new CompactSign(new TextEncoder().encode('{"a":1}'))
    .setProtectedHeader({ alg: key.algorithm, kid: key.keyId, typ: "JWT" })
    .sign(key.privateKey);
  return { token, kid: key.keyId };
}

describe.each(factories)("signing keys: %s", (_, factory) => {
  const open = async (o: Options) => {
    const source = await factory(o);
    opened.push(source);
    return source;
  };

  it("publishes nothing before the first use, then generates one RS256 key and keeps using it", async () => {
    const c = clock();
    const source = await open({ now: c.now });
    expect(await source.publicKeys("i")).toEqual({ keys: [] });
    const key = await source.signingKey("i");
    expect(key).toMatchObject({ instanceId: "i", algorithm: "RS256" });
    expect(key.privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(key.signsUntil.getTime() - key.creationDate.getTime()).toBe(6 * hour);
    expect(key.expiresAt.getTime() - key.creationDate.getTime()).toBe(30 * hour);
    expect((await source.signingKey("i")).keyId).toBe(key.keyId);
    const jwks = await source.publicKeys("i");
    expect(jwks.keys).toEqual([{ kty: "RSA", kid: key.keyId, alg: "RS256", use: "sig", n: expect.any(String), e: "AQAB" }]);
    // The JWK is the key's public part, and verifies what the key signs.
    const { token } = await signs(source, "i");
    const verified = await compactVerify(token, createLocalJWKSet(jwks as never));
    expect(new TextDecoder().decode(verified.payload)).toBe('{"a":1}');
    expect(createPublicKey({ key: jwks.keys[0] as never, format: "jwk" }).equals(createPublicKey(key.privateKey))).toBe(true);
  });

  it("generates one key for concurrent first uses", async () => {
    const source = await open({ now: () => new Date() });
    const keys = await Promise.all(Array.from({ length: 5 }, () => source.signingKey("i")));
    expect(new Set(keys.map((k) => k.keyId)).size).toBe(1);
    expect((await source.publicKeys("i")).keys.length).toBe(1);
  });

  it("generates ES256 keys on request", async () => {
    const source = await open({ now: () => new Date(), algorithm: "ES256" });
    const key = await source.signingKey("");
    expect(key.algorithm).toBe("ES256");
    expect((await source.publicKeys("")).keys).toEqual([
      { kty: "EC", kid: key.keyId, alg: "ES256", use: "sig", crv: "P-256", x: expect.any(String), y: expect.any(String) },
    ]);
  });

  it("rotates: a new key signs at once, the old one stays published until it expires", async () => {
    const c = clock();
    const source = await open({ now: c.now });
    const old = await signs(source, "i");
    c.advance(2 * hour);
    const rotated = await source.rotate("i");
    expect(rotated.keyId).not.toBe(old.kid);
    expect((await source.signingKey("i")).keyId).toBe(rotated.keyId);
    const jwks = await source.publicKeys("i");
    expect(jwks.keys.map((k) => k.kid)).toEqual([rotated.keyId, old.kid]);
    // A payload signed with the old key still verifies against the JWKS.
    await compactVerify(old.token, createLocalJWKSet(jwks as never));
    // The old key expires 30 hours after its creation, the new one 2 hours later.
    c.advance(28 * hour + 1000);
    expect((await source.publicKeys("i")).keys.map((k) => k.kid)).toEqual([rotated.keyId]);
    c.advance(2 * hour);
    expect(await source.publicKeys("i")).toEqual({ keys: [] });
  });

  it("replaces a key whose signing lifetime is over on its next use", async () => {
    const c = clock();
    const source = await open({ now: c.now, cacheMs: 0 });
    const first = await source.signingKey("i");
    c.advance(6 * hour + 1000);
    const second = await source.signingKey("i");
    expect(second.keyId).not.toBe(first.keyId);
    expect((await source.publicKeys("i")).keys.map((k) => k.kid)).toEqual([second.keyId, first.keyId]);
    c.advance(24 * hour);
    expect((await source.publicKeys("i")).keys.map((k) => k.kid)).toEqual([second.keyId]);
  });

  it("publishes the next key an hour before it signs, so that verifiers know it in time", async () => {
    const c = clock();
    const source = await open({ now: c.now, cacheMs: 0 });
    const first = await source.signingKey("i");
    c.advance(4 * hour);
    expect((await source.signingKey("i")).keyId).toBe(first.keyId);
    expect((await source.publicKeys("i")).keys.length).toBe(1);
    c.advance(hour + 1000);
    // Within the last hour: the key still signs, and its successor is generated in the background.
    expect((await source.signingKey("i")).keyId).toBe(first.keyId);
    const deadline = Date.now() + 20_000;
    let kids = (await source.publicKeys("i")).keys.map((k) => k.kid);
    while (kids.length < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      kids = (await source.publicKeys("i")).keys.map((k) => k.kid);
    }
    expect(kids.length).toBe(2);
    expect(kids[1]).toBe(first.keyId);
    expect((await source.signingKey("i")).keyId).toBe(first.keyId);
    // When the first key's signing time is over, the published one takes over.
    c.advance(hour);
    const next = await source.signingKey("i");
    expect(next.keyId).toBe(kids[0]);
    expect(next.signsFrom.getTime()).toBe(first.signsUntil.getTime());
    expect((await source.publicKeys("i")).keys.map((k) => k.kid)).toEqual(kids);
  });

  it("keeps the keys of instances apart", async () => {
    const source = await open({ now: () => new Date() });
    const a = await source.signingKey("a");
    const b = await source.signingKey("b");
    expect(a.keyId).not.toBe(b.keyId);
    expect((await source.publicKeys("a")).keys.map((k) => k.kid)).toEqual([a.keyId]);
    expect((await source.publicKeys("b")).keys.map((k) => k.kid)).toEqual([b.keyId]);
    expect(await source.publicKeys("")).toEqual({ keys: [] });
  });

  it("rejects bad instance IDs and bad lifetimes with InvalidArgument", async () => {
    const source = await open({ now: () => new Date() });
    expect(await codeOf(source.signingKey("a\u0001"))).toBe(Code.InvalidArgument);
    expect(await codeOf(source.publicKeys("x".repeat(201)))).toBe(Code.InvalidArgument);
    expect(await codeOf(factory({ now: () => new Date(), signingLifetimeMs: 10, publishedLifetimeMs: 5 } as Options))).toBe(Code.InvalidArgument);
    expect(await codeOf(factory({ now: () => new Date(), algorithm: "HS256" as "RS256" }))).toBe(Code.InvalidArgument);
  });
});

describe("postgres signing keys on two replicas", () => {
  it("share one key, generated once, and see a rotation once their cache expires", async () => {
    const schema = newSchemaName("k");
    const open = async (cacheMs: number) => {
      const s = await createPostgresSigningKeySource({ connectionString: db.url, logger: recordingLogger(), schema, cacheMs });
      opened.push(s);
      return s;
    };
    const a = await open(0);
    const b = await open(0);
    const [ka, kb] = await Promise.all([a.signingKey("i"), b.signingKey("i")]);
    expect(ka.keyId).toBe(kb.keyId);
    expect(await b.publicKeys("i")).toEqual(await a.publicKeys("i"));
    const rotated = await a.rotate("i");
    expect((await b.signingKey("i")).keyId).toBe(rotated.keyId);
    expect((await b.publicKeys("i")).keys.map((k) => k.kid)).toEqual([rotated.keyId, ka.keyId]);
    // A replica with a long cache keeps signing with the key it read, which stays published.
    const c = await open(3_600_000);
    const kc = await c.signingKey("i");
    await a.rotate("i");
    expect((await c.signingKey("i")).keyId).toBe(kc.keyId);
    expect((await c.publicKeys("i")).keys.map((k) => k.kid)).toContain(kc.keyId);
  });
});
