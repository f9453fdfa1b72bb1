// The contract every ActionStore implementation passes. A store's test file calls
// describeStoreContract with a factory that returns a fresh, empty store.
import { createHash, createPublicKey, generateKeyPairSync } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ActionStore, StoreChange } from "../store/action-store.js";
import type { InstanceLimits } from "../store/instance-limits.js";
import type { Condition } from "../condition.js";
import type { TargetInput } from "../target.js";
import { codeOf } from "./support.js";

/**
 * StoreFixture is what a store's factory gives describeStoreContract: a fresh,
 * empty store, and how to dispose of it.
 */
export interface StoreFixture {
  readonly store: ActionStore;
  /** Called after each test. */
  cleanup(): Promise<void>;
}

/**
 * StoreFixtureOptions is what the contract gives the factory of its stores.
 */
export interface StoreFixtureOptions {
  /**
   * The store's clock (creation, change and expiration dates): pass it to the
   * store (the `now` option of the bundled stores). It runs with the real
   * time, moved forward by the tests that need time to pass.
   */
  readonly now: () => Date;
  /** Caps per instance for the store, undefined for its defaults. */
  readonly limits?: InstanceLimits;
}

const hook = (name: string, extra: Partial<TargetInput> = {}): TargetInput => ({
  name,
  type: "webhook",
  endpoint: `http://127.0.0.1:9/${encodeURIComponent(name)}`,
  timeoutMs: 5000,
  ...extra,
});

const method: Condition = { type: "request", method: "/zitadel.user.v2.UserService/AddHumanUser" };
const service: Condition = { type: "request", service: "zitadel.user.v2.UserService" };
const all: Condition = { type: "request", all: true };

/**
 * describeStoreContract declares the ActionStore contract tests (vitest) for
 * the stores `factory` makes, one fresh store per test, using the clock it is
 * given: validation, atomic writes, includes and cascades, concurrent writes,
 * instances, limits per instance, changes and loading, watching, public keys.
 * `factory` also gets the caps per instance (InstanceLimits) a test needs,
 * none for the defaults. An implementation for another database calls it
 * from a test file of its own:
 *
 * ```ts
 * describeStoreContract("my store", async ({ now, limits }) => {
 *   const store = await createMyStore({ now, ...limits });
 *   return { store, cleanup: () => store.close() };
 * });
 * ```
 */
export function describeStoreContract(name: string, factory: (options: StoreFixtureOptions) => Promise<StoreFixture>): void {
  describe(`ActionStore contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: ActionStore;
    /** How far the store's clock is ahead of the real time, in milliseconds. */
    let skew = 0;
    const now = () => new Date(Date.now() + skew);
    beforeEach(async () => {
      skew = 0;
      fixture = await factory({ now });
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    describe("targets", () => {
      it("creates a target with an ID, a 36-character signing key and dates", async () => {
        const t = await store.createTarget(hook("a", { type: "call", interruptOnError: true }));
        expect(t.id).toMatch(/^\S+$/);
        expect(t.signingKey).toMatch(/^[A-Za-z0-9]{36}$/);
        expect(t).toMatchObject({ name: "a", type: "call", interruptOnError: true, timeoutMs: 5000 });
        expect(t.creationDate).toBeInstanceOf(Date);
        expect(t.changeDate.getTime()).toBe(t.creationDate.getTime());
        expect(await store.getTarget(t.id)).toEqual(t);
        expect(await store.listTargets()).toEqual([t]);
      });

      it("gives every target its own ID and key", async () => {
        const ts = await Promise.all(Array.from({ length: 20 }, (_, i) => store.createTarget(hook(`t${i}`))));
        expect(new Set(ts.map((t) => t.id)).size).toBe(20);
        expect(new Set(ts.map((t) => t.signingKey)).size).toBe(20);
        expect((await store.listTargets()).length).toBe(20);
      });

      it("lists targets oldest first", async () => {
        const a = await store.createTarget(hook("first"));
        const b = await store.createTarget(hook("second"));
        expect((await store.listTargets()).map((t) => t.id)).toEqual([a.id, b.id]);
      });

      it.each([
        ["an empty name", { name: "  " }],
        ["a name over 1000 characters", { name: "x".repeat(1001) }],
        ["a malformed URL", { endpoint: "not a url" }],
        ["a non-http URL", { endpoint: "ftp://example.com/x" }],
        ["a name with a lone surrogate", { name: "bad\uD800name" }],
        ["an endpoint with a control character", { endpoint: "http://example.com/a\u0000b" }],
        ["an endpoint with a space", { endpoint: "http://example.com/a b" }],
        ["an endpoint over 2048 characters", { endpoint: "http://example.com/" + "x".repeat(2048) }],
        ["a zero timeout", { timeoutMs: 0 }],
        ["a negative timeout", { timeoutMs: -5 }],
        ["a timeout over 270 s", { timeoutMs: 270_001 }],
        ["a missing timeout", { timeoutMs: undefined as unknown as number }],
        ["an unknown type", { type: "soap" as "call" }],
        ["an async target that interrupts", { type: "async" as const, interruptOnError: true }],
      ])("rejects %s with InvalidArgument and stores nothing", async (_, extra) => {
        expect(await codeOf(store.createTarget(hook("bad", extra)))).toBe(Code.InvalidArgument);
        expect(await store.listTargets()).toEqual([]);
      });

      it("stores the payload type, json unless set, and changes it", async () => {
        const plain = await store.createTarget(hook("plain"));
        expect(plain.payloadType).toBe("json");
        const jwt = await store.createTarget(hook("jwt", { payloadType: "jwt" }));
        expect(jwt.payloadType).toBe("jwt");
        expect(await store.getTarget(jwt.id)).toEqual(jwt);
        const jwe = await store.updateTarget(plain.id, { payloadType: "jwe" });
        expect(jwe.payloadType).toBe("jwe");
        expect((await store.updateTarget(plain.id, { timeoutMs: 10 })).payloadType).toBe("jwe");
        expect(await codeOf(store.createTarget(hook("bad", { payloadType: "xml" as "json" })))).toBe(Code.InvalidArgument);
        expect(await codeOf(store.updateTarget(plain.id, { payloadType: "JWT" as "jwt" }))).toBe(Code.InvalidArgument);
        expect((await store.listTargets()).map((t) => t.payloadType)).toEqual(["jwe", "jwt"]);
      });

      it("accepts the largest timeout, 270 s", async () => {
        expect((await store.createTarget(hook("slow", { timeoutMs: 270_000 }))).timeoutMs).toBe(270_000);
      });

      it("rejects a duplicate name with AlreadyExists and keeps the first", async () => {
        const a = await store.createTarget(hook("dup"));
        expect(await codeOf(store.createTarget(hook("dup", { endpoint: "http://other.example/" })))).toBe(Code.AlreadyExists);
        expect(await store.listTargets()).toEqual([a]);
      });

      it("lets exactly one of many concurrent creations of a name win", async () => {
        const results = await Promise.allSettled(Array.from({ length: 10 }, () => store.createTarget(hook("race"))));
        expect(results.filter((r) => r.status === "fulfilled").length).toBe(1);
        for (const r of results) {
          if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.AlreadyExists);
        }
        expect((await store.listTargets()).length).toBe(1);
      });

      it("updates the given fields and keeps the others and the key", async () => {
        const t = await store.createTarget(hook("u"));
        await new Promise((r) => setTimeout(r, 5));
        const u = await store.updateTarget(t.id, { endpoint: "https://example.com/new", timeoutMs: 1000, type: "call" });
        expect(u).toMatchObject({ id: t.id, name: "u", endpoint: "https://example.com/new", timeoutMs: 1000, type: "call" });
        expect(u.signingKey).toBe(t.signingKey);
        expect(u.creationDate.getTime()).toBe(t.creationDate.getTime());
        expect(u.changeDate.getTime()).toBeGreaterThan(t.changeDate.getTime());
        expect(await store.getTarget(t.id)).toEqual(u);
      });

      it("rotates the signing key on request", async () => {
        const t = await store.createTarget(hook("rot"));
        const u = await store.updateTarget(t.id, { rotateSigningKey: true });
        expect(u.signingKey).toMatch(/^[A-Za-z0-9]{36}$/);
        expect(u.signingKey).not.toBe(t.signingKey);
      });

      it("turns interruptOnError off when a target becomes async", async () => {
        const t = await store.createTarget(hook("i", { interruptOnError: true }));
        expect((await store.updateTarget(t.id, { type: "async" })).interruptOnError).toBe(false);
      });

      it("rejects updates of unknown targets, bad fields and taken names, changing nothing", async () => {
        const a = await store.createTarget(hook("a"));
        const b = await store.createTarget(hook("b"));
        expect(await codeOf(store.updateTarget("404", { name: "x" }))).toBe(Code.NotFound);
        expect(await codeOf(store.updateTarget(a.id, { name: "b" }))).toBe(Code.AlreadyExists);
        expect(await codeOf(store.updateTarget(a.id, { name: "ok", timeoutMs: 0 }))).toBe(Code.InvalidArgument);
        expect(await codeOf(store.updateTarget(a.id, { endpoint: "mailto:x@y" }))).toBe(Code.InvalidArgument);
        expect(await store.listTargets()).toEqual([a, b]);
      });

      it("lets a renamed target free its old name", async () => {
        const a = await store.createTarget(hook("old"));
        await store.updateTarget(a.id, { name: "new" });
        expect((await store.createTarget(hook("old"))).name).toBe("old");
      });

      it("deletes a target, and deleting a missing one is not an error", async () => {
        const t = await store.createTarget(hook("d"));
        expect(await store.deleteTarget(t.id)).toBe(true);
        expect(await store.getTarget(t.id)).toBeUndefined();
        expect(await store.deleteTarget(t.id)).toBe(false);
        expect((await store.createTarget(hook("d"))).name).toBe("d");
      });
    });


    describe("public keys", () => {
      let rsa: string;
      let rsaDer: Buffer;
      let ec: string;
      let ec384: string;
      const unusable: [string, string | Uint8Array][] = [];
      beforeAll(() => {
        const spki = { type: "spki", format: "pem" } as const;
        rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export(spki) as string;
        rsaDer = createPublicKey(rsa).export({ type: "spki", format: "der" });
        ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export(spki) as string;
        ec384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).publicKey.export(spki) as string;
        const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
        unusable.push(
          ["an empty key", ""],
          ["text without a PEM block", "hello"],
          ["a PEM block that is not base64", "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n"],
          ["a PKCS#1 RSA key", small.export({ type: "pkcs1", format: "pem" })],
          ["an RSA key of 1024 bits", small.export(spki)],
          ["an Ed25519 key", generateKeyPairSync("ed25519").publicKey.export(spki)],
          ["an EC key on secp256k1", generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey.export(spki)],
          ["a private key", generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" })],
          ["bytes that are not UTF-8", new Uint8Array([0xff, 0xfe, 0x2d])],
          ["a PEM over 8192 bytes", "x".repeat(8192) + "\n" + ec],
        );
      });
      const fingerprintOf = (der: Buffer) => "SHA256:" + createHash("sha256").update(der).digest("base64").replace(/=+$/, "");
      const activeIds = async (targetId: string) =>
        (await store.listPublicKeys(targetId)).filter((k) => k.active).map((k) => k.keyId);

      it("adds inactive keys with their fingerprint and type, and lists them oldest first", async () => {
        const t = await store.createTarget(hook("t", { payloadType: "jwe" }));
        const a = await store.addPublicKey(t.id, { publicKey: rsa });
        expect(a).toEqual({
          keyId: expect.stringMatching(/^\S+$/),
          targetId: t.id,
          publicKey: rsa,
          fingerprint: fingerprintOf(rsaDer),
          keyType: "rsa",
          active: false,
          creationDate: expect.any(Date),
          changeDate: a.creationDate,
        });
        const expires = new Date(now().getTime() + 3_600_000);
        const b = await store.addPublicKey(t.id, { publicKey: new TextEncoder().encode(ec), expirationDate: expires });
        expect(b).toMatchObject({ keyType: "ec", active: false, publicKey: ec, expirationDate: expires });
        expect(b.keyId).not.toBe(a.keyId);
        expect(await store.listPublicKeys(t.id)).toEqual([a, b]);
        expect((await store.getTarget(t.id))?.encryptionKey).toBeUndefined();
      });

      it("keeps the text around the PEM block, as it was added, and reads only the block", async () => {
        const t = await store.createTarget(hook("t"));
        const text = `my key, P-384:\n${ec384}trailing words\n`;
        const k = await store.addPublicKey(t.id, { publicKey: text });
        expect(k.publicKey).toBe(text);
        expect(k.fingerprint).toBe(fingerprintOf(createPublicKey(ec384).export({ type: "spki", format: "der" })));
      });

      it("rejects keys that cannot encrypt payloads with InvalidArgument, and stores nothing", async () => {
        const t = await store.createTarget(hook("t"));
        for (const [what, publicKey] of unusable) {
          expect(await codeOf(store.addPublicKey(t.id, { publicKey })), what).toBe(Code.InvalidArgument);
        }
        expect(await store.listPublicKeys(t.id)).toEqual([]);
      });

      it("rejects an expiration date in the past with InvalidArgument", async () => {
        const t = await store.createTarget(hook("t"));
        expect(await codeOf(store.addPublicKey(t.id, { publicKey: ec, expirationDate: new Date(now().getTime() - 1000) }))).toBe(
          Code.InvalidArgument,
        );
        expect(await codeOf(store.addPublicKey(t.id, { publicKey: ec, expirationDate: new Date(Number.NaN) }))).toBe(Code.InvalidArgument);
        expect(await store.listPublicKeys(t.id)).toEqual([]);
      });

      it("keeps one active key: activating a key deactivates the previous one", async () => {
        const t = await store.createTarget(hook("t", { payloadType: "jwe" }));
        const a = await store.addPublicKey(t.id, { publicKey: rsa });
        const b = await store.addPublicKey(t.id, { publicKey: ec });
        await new Promise((r) => setTimeout(r, 5));
        const activeA = await store.activatePublicKey(t.id, a.keyId);
        expect(activeA).toMatchObject({ keyId: a.keyId, active: true });
        expect(activeA.changeDate.getTime()).toBeGreaterThan(a.changeDate.getTime());
        expect((await store.getTarget(t.id))?.encryptionKey).toEqual({ keyId: a.keyId, publicKey: rsa });
        // Activating the active key changes nothing.
        await new Promise((r) => setTimeout(r, 5));
        expect(await store.activatePublicKey(t.id, a.keyId)).toEqual(activeA);
        const activeB = await store.activatePublicKey(t.id, b.keyId);
        expect(activeB.active).toBe(true);
        expect(await activeIds(t.id)).toEqual([b.keyId]);
        const [listedA] = await store.listPublicKeys(t.id);
        expect(listedA).toMatchObject({ keyId: a.keyId, active: false });
        expect(listedA!.changeDate.getTime()).toBe(activeB.changeDate.getTime());
        const target = await store.getTarget(t.id);
        expect(target?.encryptionKey).toEqual({ keyId: b.keyId, publicKey: ec });
        // The target itself did not change.
        expect(target?.changeDate.getTime()).toBe(t.changeDate.getTime());
        expect((await store.listTargets())[0]?.encryptionKey?.keyId).toBe(b.keyId);
        expect((await store.snapshot()).targets[0]?.encryptionKey?.keyId).toBe(b.keyId);
      });

      it("lets exactly one of concurrent activations win", async () => {
        const t = await store.createTarget(hook("t"));
        const keys = await Promise.all([rsa, ec, ec384].map((publicKey) => store.addPublicKey(t.id, { publicKey })));
        for (let i = 0; i < 3; i++) {
          const results = await Promise.allSettled(keys.map((k) => store.activatePublicKey(t.id, k.keyId)));
          expect(results.every((r) => r.status === "fulfilled")).toBe(true);
          const active = await activeIds(t.id);
          expect(active.length).toBe(1);
          expect((await store.getTarget(t.id))?.encryptionKey?.keyId).toBe(active[0]);
        }
      });

      it("deactivates a key, leaving the target without one; deactivating an inactive key changes nothing", async () => {
        const t = await store.createTarget(hook("t"));
        const a = await store.addPublicKey(t.id, { publicKey: ec });
        expect(await store.deactivatePublicKey(t.id, a.keyId)).toEqual(a);
        await store.activatePublicKey(t.id, a.keyId);
        const off = await store.deactivatePublicKey(t.id, a.keyId);
        expect(off).toMatchObject({ keyId: a.keyId, active: false });
        expect(await store.listPublicKeys(t.id)).toEqual([off]);
        expect((await store.getTarget(t.id))?.encryptionKey).toBeUndefined();
      });

      it("refuses to remove the active key; removes inactive ones; removing a missing key is not an error", async () => {
        const t = await store.createTarget(hook("t"));
        const a = await store.addPublicKey(t.id, { publicKey: rsa });
        const b = await store.addPublicKey(t.id, { publicKey: ec });
        await store.activatePublicKey(t.id, a.keyId);
        expect(await codeOf(store.removePublicKey(t.id, a.keyId))).toBe(Code.FailedPrecondition);
        expect(await store.removePublicKey(t.id, b.keyId)).toBe(true);
        expect(await store.removePublicKey(t.id, b.keyId)).toBe(false);
        expect(await store.removePublicKey("404", b.keyId)).toBe(false);
        await store.deactivatePublicKey(t.id, a.keyId);
        expect(await store.removePublicKey(t.id, a.keyId)).toBe(true);
        expect(await store.listPublicKeys(t.id)).toEqual([]);
      });

      it("treats an expired key as inactive: it is not used, cannot be activated and can be removed", async () => {
        const t = await store.createTarget(hook("t"));
        const a = await store.addPublicKey(t.id, { publicKey: ec, expirationDate: new Date(now().getTime() + 60_000) });
        const b = await store.addPublicKey(t.id, { publicKey: rsa, expirationDate: new Date(now().getTime() + 60_000) });
        await store.activatePublicKey(t.id, a.keyId);
        expect((await store.getTarget(t.id))?.encryptionKey).toEqual({ keyId: a.keyId, publicKey: ec, expirationDate: a.expirationDate });
        skew = 61_000;
        expect(await activeIds(t.id)).toEqual([]);
        expect(await codeOf(store.activatePublicKey(t.id, b.keyId))).toBe(Code.FailedPrecondition);
        expect((await store.deactivatePublicKey(t.id, a.keyId)).active).toBe(false);
        await store.activatePublicKey(t.id, a.keyId).catch(() => undefined);
        expect(await store.removePublicKey(t.id, a.keyId)).toBe(true);
        expect((await store.getTarget(t.id))?.encryptionKey).toBeUndefined();
      });

      it("removes an expired key that is still flagged active, and the target's key with it", async () => {
        const t = await store.createTarget(hook("t"));
        const a = await store.addPublicKey(t.id, { publicKey: ec, expirationDate: new Date(now().getTime() + 60_000) });
        await store.activatePublicKey(t.id, a.keyId);
        skew = 61_000;
        expect(await store.removePublicKey(t.id, a.keyId)).toBe(true);
        expect((await store.getTarget(t.id))?.encryptionKey).toBeUndefined();
      });

      it("answers NotFound for an unknown target or key, and for another instance's target", async () => {
        const t = await store.createTarget(hook("t"));
        const k = await store.addPublicKey(t.id, { publicKey: ec });
        expect(await codeOf(store.addPublicKey("404", { publicKey: ec }))).toBe(Code.NotFound);
        for (const call of ["activatePublicKey", "deactivatePublicKey"] as const) {
          expect(await codeOf(store[call]("404", k.keyId)), call).toBe(Code.NotFound);
          expect(await codeOf(store[call](t.id, "404")), call).toBe(Code.NotFound);
        }
        const other = store.forInstance("other");
        expect(await codeOf(other.addPublicKey(t.id, { publicKey: ec }))).toBe(Code.NotFound);
        expect(await codeOf(other.activatePublicKey(t.id, k.keyId))).toBe(Code.NotFound);
        expect(await other.removePublicKey(t.id, k.keyId)).toBe(false);
        expect(await other.listPublicKeys(t.id)).toEqual([]);
        expect(await store.listPublicKeys("404")).toEqual([]);
        expect(await store.listPublicKeys(t.id)).toEqual([k]);
      });

      it("deletes a target's keys with it", async () => {
        const t = await store.createTarget(hook("t"));
        const k = await store.addPublicKey(t.id, { publicKey: ec });
        await store.activatePublicKey(t.id, k.keyId);
        expect(await store.deleteTarget(t.id)).toBe(true);
        expect(await store.listPublicKeys(t.id)).toEqual([]);
        expect(await codeOf(store.activatePublicKey(t.id, k.keyId))).toBe(Code.NotFound);
        expect(await store.removePublicKey(t.id, k.keyId)).toBe(false);
      });

      it("limits a target to 100 keys with ResourceExhausted", async () => {
        const t = await store.createTarget(hook("t"));
        for (let i = 0; i < 100; i++) await store.addPublicKey(t.id, { publicKey: ec });
        expect(await codeOf(store.addPublicKey(t.id, { publicKey: ec }))).toBe(Code.ResourceExhausted);
        expect((await store.listPublicKeys(t.id)).length).toBe(100);
      });

      it("tells watchers of the target whose active key changed, and loads it with its key", async () => {
        const one = store.forInstance("one");
        const t = await one.createTarget(hook("t"));
        const k = await one.addPublicKey(t.id, { publicKey: ec });
        const changes: StoreChange[] = [];
        const stop = store.watch((c) => changes.push(c));
        await one.activatePublicKey(t.id, k.keyId);
        expect(changes.at(-1)).toMatchObject({ instanceId: "one", targetIds: [t.id] });
        expect((await one.load({ targetIds: [t.id] })).targets[0]?.encryptionKey?.keyId).toBe(k.keyId);
        const before = changes.length;
        await one.deactivatePublicKey(t.id, k.keyId);
        expect(changes.length).toBeGreaterThan(before);
        expect(changes.at(-1)).toMatchObject({ instanceId: "one", targetIds: [t.id] });
        expect((await one.load({ targetIds: [t.id] })).targets[0]?.encryptionKey).toBeUndefined();
        stop();
      });
    });

    describe("executions", () => {
      it("sets an execution under its condition's ID, in the given order", async () => {
        const a = await store.createTarget(hook("a"));
        const b = await store.createTarget(hook("b"));
        const e = await store.setExecution(method, [{ target: b.id }, { target: a.id }]);
        expect(e?.id).toBe("request/zitadel.user.v2.UserService/AddHumanUser");
        expect(e?.condition).toEqual(method);
        expect(e?.targets).toEqual([{ target: b.id }, { target: a.id }]);
        expect(await store.getExecution(e!.id)).toEqual(e);
      });

      it("replaces the list and keeps the creation date", async () => {
        const a = await store.createTarget(hook("a"));
        const b = await store.createTarget(hook("b"));
        const first = await store.setExecution(service, [{ target: a.id }]);
        await new Promise((r) => setTimeout(r, 5));
        const second = await store.setExecution(service, [{ target: b.id }]);
        expect(second?.targets).toEqual([{ target: b.id }]);
        expect(second?.creationDate.getTime()).toBe(first?.creationDate.getTime());
        expect(second!.changeDate.getTime()).toBeGreaterThan(first!.changeDate.getTime());
        expect((await store.listExecutions()).length).toBe(1);
      });

      it("removes an execution when set with no targets", async () => {
        const a = await store.createTarget(hook("a"));
        await store.setExecution(all, [{ target: a.id }]);
        expect(await store.setExecution(all, [])).toBeUndefined();
        expect(await store.getExecution("request")).toBeUndefined();
        expect(await store.setExecution(all, [])).toBeUndefined();
      });

      it("lists executions ordered by ID", async () => {
        const a = await store.createTarget(hook("a"));
        await store.setExecution({ type: "response", all: true }, [{ target: a.id }]);
        await store.setExecution(method, [{ target: a.id }]);
        await store.setExecution({ type: "event", group: "user.human" }, [{ target: a.id }]);
        await store.setExecution({ type: "function", name: "preuserinfo" }, [{ target: a.id }]);
        expect((await store.listExecutions()).map((e) => e.id)).toEqual([
          "event/user.human.*",
          "function/preuserinfo",
          "request/zitadel.user.v2.UserService/AddHumanUser",
          "response",
        ]);
      });

      it("rejects an unknown target with NotFound and writes nothing", async () => {
        const a = await store.createTarget(hook("a"));
        await store.setExecution(method, [{ target: a.id }]);
        expect(await codeOf(store.setExecution(method, [{ target: a.id }, { target: "404" }]))).toBe(Code.NotFound);
        expect((await store.getExecution("request/zitadel.user.v2.UserService/AddHumanUser"))?.targets).toEqual([{ target: a.id }]);
      });

      it.each([
        ["two selectors", { type: "request", method: "/a.B/C", all: true }],
        ["no selector", { type: "request" }],
        ["a malformed method", { type: "request", method: "nope" }],
        ["an unknown type", { type: "teleport", all: true }],
        ["a function with no name", { type: "function", name: "" }],
      ])("rejects a condition with %s as InvalidArgument", async (_, condition) => {
        const a = await store.createTarget(hook("a"));
        expect(await codeOf(store.setExecution(condition as unknown as Condition, [{ target: a.id }]))).toBe(Code.InvalidArgument);
        expect(await store.listExecutions()).toEqual([]);
      });

      it("rejects repeated entries and entries with both or neither of target and include", async () => {
        const a = await store.createTarget(hook("a"));
        for (const list of [[{ target: a.id }, { target: a.id }], [{}], [{ target: a.id, include: "request" }]]) {
          expect(await codeOf(store.setExecution(method, list as never))).toBe(Code.InvalidArgument);
        }
        expect(await store.listExecutions()).toEqual([]);
      });

      it("removes a deleted target from every execution and drops executions left empty", async () => {
        const a = await store.createTarget(hook("a"));
        const b = await store.createTarget(hook("b"));
        await store.setExecution(method, [{ target: a.id }, { target: b.id }]);
        await store.setExecution(service, [{ target: a.id }]);
        await store.deleteTarget(a.id);
        expect((await store.getExecution("request/zitadel.user.v2.UserService/AddHumanUser"))?.targets).toEqual([{ target: b.id }]);
        expect(await store.getExecution("request/zitadel.user.v2.UserService")).toBeUndefined();
      });
    });

    describe("includes", () => {
      it("stores includes of existing executions of the same type", async () => {
        const a = await store.createTarget(hook("a"));
        const b = await store.createTarget(hook("b"));
        await store.setExecution(service, [{ target: a.id }]);
        const e = await store.setExecution(method, [{ target: b.id }, { include: "request/zitadel.user.v2.UserService" }]);
        expect(e?.targets).toEqual([{ target: b.id }, { include: "request/zitadel.user.v2.UserService" }]);
      });

      it("removes includes of an execution that is removed, and executions left empty, in cascade", async () => {
        const a = await store.createTarget(hook("a"));
        const b = await store.createTarget(hook("b"));
        await store.setExecution({ type: "function", name: "base" }, [{ target: a.id }]);
        await store.setExecution({ type: "function", name: "mid" }, [{ include: "function/base" }]);
        await store.setExecution({ type: "function", name: "top" }, [{ include: "function/mid" }]);
        await store.setExecution({ type: "function", name: "other" }, [{ target: b.id }, { include: "function/base" }]);
        // Deleting the only target of "base" removes it; "mid" and "top" are left empty and go too.
        await store.deleteTarget(a.id);
        expect((await store.listExecutions()).map((e) => [e.id, e.targets])).toEqual([["function/other", [{ target: b.id }]]]);
        // Setting an execution with no targets cascades the same way.
        await store.setExecution({ type: "function", name: "base" }, [{ target: b.id }]);
        await store.setExecution({ type: "function", name: "mid" }, [{ include: "function/base" }]);
        await store.setExecution({ type: "function", name: "base" }, []);
        expect(await store.getExecution("function/mid")).toBeUndefined();
      });

      it("rejects an include of a missing execution with NotFound", async () => {
        const a = await store.createTarget(hook("a"));
        expect(await codeOf(store.setExecution(method, [{ target: a.id }, { include: "request" }]))).toBe(Code.NotFound);
        expect(await store.listExecutions()).toEqual([]);
      });

      it("rejects an include of itself or of another type", async () => {
        const a = await store.createTarget(hook("a"));
        await store.setExecution({ type: "response", all: true }, [{ target: a.id }]);
        expect(await codeOf(store.setExecution(all, [{ include: "request" }]))).toBe(Code.InvalidArgument);
        expect(await codeOf(store.setExecution(all, [{ include: "response" }]))).toBe(Code.InvalidArgument);
        expect(await store.getExecution("request")).toBeUndefined();
      });

      it("rejects an include cycle and keeps the previous list", async () => {
        const a = await store.createTarget(hook("a"));
        await store.setExecution(all, [{ target: a.id }]);
        await store.setExecution(service, [{ include: "request" }]);
        expect(await codeOf(store.setExecution(all, [{ target: a.id }, { include: "request/zitadel.user.v2.UserService" }]))).toBe(
          Code.InvalidArgument,
        );
        expect((await store.getExecution("request"))?.targets).toEqual([{ target: a.id }]);
      });

      it("allows 3 nested levels of includes and rejects a 4th, from below and from above", async () => {
        const a = await store.createTarget(hook("a"));
        const fn = (n: number): Condition => ({ type: "function", name: `f${n}` });
        await store.setExecution(fn(0), [{ target: a.id }]);
        await store.setExecution(fn(1), [{ include: "function/f0" }]);
        await store.setExecution(fn(2), [{ include: "function/f1" }]);
        await store.setExecution(fn(3), [{ include: "function/f2" }]);
        // f4 -> f3 -> f2 -> f1 -> f0 is 4 levels.
        expect(await codeOf(store.setExecution(fn(4), [{ include: "function/f3" }]))).toBe(Code.InvalidArgument);
        expect(await store.getExecution("function/f4")).toBeUndefined();
        // Deepening from below: f0 gaining an include makes f3's chain 4 deep.
        await store.setExecution(fn(9), [{ target: a.id }]);
        expect(await codeOf(store.setExecution(fn(0), [{ target: a.id }, { include: "function/f9" }]))).toBe(Code.InvalidArgument);
        expect((await store.getExecution("function/f0"))?.targets).toEqual([{ target: a.id }]);
      });
    });

    describe("concurrent writes", () => {
      it("lets exactly one of two writes that would close an include cycle win", async () => {
        const a = await store.createTarget(hook("a"));
        for (let i = 0; i < 5; i++) {
          await store.setExecution({ type: "function", name: `x${i}` }, [{ target: a.id }]);
          await store.setExecution({ type: "function", name: `y${i}` }, [{ target: a.id }]);
          const results = await Promise.allSettled([
            store.setExecution({ type: "function", name: `x${i}` }, [{ target: a.id }, { include: `function/y${i}` }]),
            store.setExecution({ type: "function", name: `y${i}` }, [{ target: a.id }, { include: `function/x${i}` }]),
          ]);
          expect(results.filter((r) => r.status === "fulfilled").length).toBe(1);
          for (const r of results) {
            if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.InvalidArgument);
          }
        }
      });

      it("never leaves an execution referring to a target deleted at the same time", async () => {
        const keep = await store.createTarget(hook("keep"));
        for (let i = 0; i < 5; i++) {
          const t = await store.createTarget(hook(`doomed${i}`));
          const list = i % 2 === 0 ? [{ target: t.id }] : [{ target: keep.id }, { target: t.id }];
          const [set] = await Promise.allSettled([
            store.setExecution({ type: "function", name: `f${i}` }, list),
            store.deleteTarget(t.id),
          ]);
          if (set.status === "rejected") expect(ConnectError.from(set.reason).code).toBe(Code.NotFound);
        }
        const snap = await store.snapshot();
        const ids = new Set(snap.targets.map((t) => t.id));
        for (const e of snap.executions) {
          expect(e.targets.length).toBeGreaterThan(0);
          for (const entry of e.targets) {
            if ("target" in entry) expect(ids.has(entry.target)).toBe(true);
          }
        }
      });
    });

    describe("cascades", () => {
      it("reads every execution it changes afresh, so a cascade never writes back a stale list", async () => {
        // x = [T, include e], e = [T]: deleting T empties e, which removes the include from x, which empties x.
        const t = await store.createTarget(hook("t"));
        await store.setExecution({ type: "function", name: "e" }, [{ target: t.id }]);
        await store.setExecution({ type: "function", name: "x" }, [{ target: t.id }, { include: "function/e" }]);
        await store.deleteTarget(t.id);
        expect(await store.listExecutions()).toEqual([]);
        // Setting e again does not bring x back.
        const u = await store.createTarget(hook("u"));
        await store.setExecution({ type: "function", name: "e" }, [{ target: u.id }]);
        expect((await store.listExecutions()).map((e) => e.id)).toEqual(["function/e"]);
      });

      it("keeps what other entries a cascade leaves, in order", async () => {
        const t = await store.createTarget(hook("t"));
        const u = await store.createTarget(hook("u"));
        await store.setExecution({ type: "function", name: "e" }, [{ target: t.id }]);
        await store.setExecution({ type: "function", name: "x" }, [{ target: u.id }, { target: t.id }, { include: "function/e" }]);
        await store.deleteTarget(t.id);
        expect((await store.listExecutions()).map((e) => [e.id, e.targets])).toEqual([["function/x", [{ target: u.id }]]]);
      });
    });

    describe("instances", () => {
      it("manages the default instance with its own methods", async () => {
        const a = await store.createTarget(hook("a"));
        expect(a.instanceId).toBe("");
        expect(store.instanceId).toBe("");
        expect(await store.forInstance("").getTarget(a.id)).toEqual(a);
      });

      it("keeps the targets and executions of each instance apart", async () => {
        const one = store.forInstance("one");
        const two = store.forInstance("two");
        const a1 = await one.createTarget(hook("same name"));
        const a2 = await two.createTarget(hook("same name"));
        expect([a1.instanceId, a2.instanceId]).toEqual(["one", "two"]);
        expect(await one.listTargets()).toEqual([a1]);
        expect(await two.listTargets()).toEqual([a2]);
        expect(await store.listTargets()).toEqual([]);
        // Another instance's target is not found, whatever the call.
        expect(await one.getTarget(a2.id)).toBeUndefined();
        expect(await codeOf(one.updateTarget(a2.id, { name: "stolen" }))).toBe(Code.NotFound);
        expect(await one.deleteTarget(a2.id)).toBe(false);
        expect(await codeOf(one.setExecution(method, [{ target: a2.id }]))).toBe(Code.NotFound);
        expect(await two.getTarget(a2.id)).toEqual(a2);
        // The same condition in two instances: two executions.
        const e1 = await one.setExecution(method, [{ target: a1.id }]);
        const e2 = await two.setExecution(method, [{ target: a2.id }]);
        expect(e1?.id).toBe(e2?.id);
        expect((await one.getExecution(e1!.id))?.targets).toEqual([{ target: a1.id }]);
        expect((await two.getExecution(e2!.id))?.targets).toEqual([{ target: a2.id }]);
        expect(await one.snapshot()).toEqual({ targets: [a1], executions: [e1] });
        // Includes stay within the instance.
        await two.setExecution(service, [{ target: a2.id }]);
        expect(await codeOf(one.setExecution(method, [{ target: a1.id }, { include: "request/zitadel.user.v2.UserService" }]))).toBe(
          Code.NotFound,
        );
        // Deleting in one instance leaves the other alone.
        await one.deleteTarget(a1.id);
        expect(await one.listExecutions()).toEqual([]);
        expect((await two.listExecutions()).length).toBe(2);
        expect(await two.getTarget(a2.id)).toEqual(a2);
      });

      it.each([
        ["a control character", "a\u0001b"],
        ["over 200 characters", "x".repeat(201)],
      ])("rejects an instance ID with %s", async (_, id) => {
        expect(() => store.forInstance(id)).toThrow(expect.objectContaining({ code: Code.InvalidArgument }));
      });
    });

    describe("limits per instance", () => {
      let limited: StoreFixture | undefined;
      afterEach(async () => {
        await limited?.cleanup();
        limited = undefined;
      });
      const open = async (limits: InstanceLimits): Promise<ActionStore> => (limited = await factory({ now: () => new Date(), limits })).store;
      const exhausted = async (p: Promise<unknown>, cap: string) => {
        const error = await p.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(ConnectError);
        expect((error as ConnectError).code).toBe(Code.ResourceExhausted);
        expect((error as ConnectError).rawMessage).toContain(cap);
      };

      it("refuses a target beyond maxTargetsPerInstance with ResourceExhausted naming the cap, in each instance", async () => {
        const limitedStore = await open({ maxTargetsPerInstance: 3 });
        const a = limitedStore.forInstance("a");
        const made = [];
        for (let i = 0; i < 3; i++) made.push(await a.createTarget(hook(`t${i}`)));
        await exhausted(a.createTarget(hook("t3")), "maxTargetsPerInstance");
        expect((await a.listTargets()).length).toBe(3);
        // Other instances, the default one included, have caps of their own.
        for (let i = 0; i < 3; i++) await limitedStore.forInstance("b").createTarget(hook(`t${i}`));
        for (let i = 0; i < 3; i++) await limitedStore.createTarget(hook(`t${i}`));
        await exhausted(limitedStore.createTarget(hook("t3")), "maxTargetsPerInstance");
        // At the cap, targets can still change; a deletion makes room.
        await a.updateTarget(made[0]!.id, { name: "renamed" });
        await a.deleteTarget(made[1]!.id);
        expect((await a.createTarget(hook("t3"))).name).toBe("t3");
        await exhausted(a.createTarget(hook("t4")), "maxTargetsPerInstance");
      });

      it("refuses an execution beyond maxExecutionsPerInstance, and still replaces and removes executions at the cap", async () => {
        const limitedStore = await open({ maxExecutionsPerInstance: 2 });
        const a = limitedStore.forInstance("a");
        const t = await a.createTarget(hook("t"));
        const u = await a.createTarget(hook("u"));
        await a.setExecution({ type: "function", name: "f0" }, [{ target: t.id }]);
        await a.setExecution({ type: "function", name: "f1" }, [{ target: t.id }]);
        await exhausted(a.setExecution({ type: "function", name: "f2" }, [{ target: t.id }]), "maxExecutionsPerInstance");
        expect((await a.listExecutions()).map((e) => e.id)).toEqual(["function/f0", "function/f1"]);
        await a.setExecution({ type: "function", name: "f0" }, [{ target: u.id }, { include: "function/f1" }]);
        expect((await a.getExecution("function/f0"))?.targets).toEqual([{ target: u.id }, { include: "function/f1" }]);
        const b = limitedStore.forInstance("b");
        const tb = await b.createTarget(hook("t"));
        await b.setExecution({ type: "function", name: "f0" }, [{ target: tb.id }]);
        await b.setExecution({ type: "function", name: "f1" }, [{ target: tb.id }]);
        // Removing makes room, whether by an empty list or by a deleted target's cascade.
        await a.setExecution({ type: "function", name: "f0" }, []);
        await a.setExecution({ type: "function", name: "f2" }, [{ target: t.id }]);
        await exhausted(a.setExecution({ type: "function", name: "f3" }, [{ target: t.id }]), "maxExecutionsPerInstance");
        await a.deleteTarget(t.id);
        expect(await a.listExecutions()).toEqual([]);
        await a.setExecution({ type: "function", name: "f3" }, [{ target: u.id }]);
      });

      it("never exceeds the caps, however many creations run at once", async () => {
        const limitedStore = await open({ maxTargetsPerInstance: 5, maxExecutionsPerInstance: 5 });
        const a = limitedStore.forInstance("a");
        const targets = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => a.createTarget(hook(`t${i}`))));
        expect(targets.filter((r) => r.status === "fulfilled").length).toBe(5);
        for (const r of targets) {
          if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.ResourceExhausted);
        }
        expect((await a.listTargets()).length).toBe(5);
        const [t] = await a.listTargets();
        const executions = await Promise.allSettled(
          Array.from({ length: 20 }, (_, i) => a.setExecution({ type: "function", name: `f${i}` }, [{ target: t!.id }])),
        );
        expect(executions.filter((r) => r.status === "fulfilled").length).toBe(5);
        for (const r of executions) {
          if (r.status === "rejected") expect(ConnectError.from(r.reason).code).toBe(Code.ResourceExhausted);
        }
        expect((await a.listExecutions()).length).toBe(5);
      });

      it("takes Infinity for no cap, and refuses caps that are neither positive integers nor Infinity", async () => {
        const unlimited = await open({ maxTargetsPerInstance: Infinity, maxExecutionsPerInstance: Infinity });
        expect((await unlimited.createTarget(hook("t"))).name).toBe("t");
        for (const bad of [0, -1, 1.5, Number.NaN]) {
          await expect(factory({ now: () => new Date(), limits: { maxTargetsPerInstance: bad } })).rejects.toMatchObject({ code: Code.InvalidArgument });
          await expect(factory({ now: () => new Date(), limits: { maxExecutionsPerInstance: bad } })).rejects.toMatchObject({ code: Code.InvalidArgument });
        }
      });
    });

    describe("changes and loading", () => {
      it("tells watchers which instance, targets and executions changed, cascades included", async () => {
        const changes: StoreChange[] = [];
        const stop = store.watch((c) => changes.push(c));
        const one = store.forInstance("one");
        const a = await one.createTarget(hook("a"));
        expect(changes.at(-1)).toMatchObject({ instanceId: "one", targetIds: [a.id] });
        await one.updateTarget(a.id, { timeoutMs: 100 });
        expect(changes.at(-1)).toMatchObject({ instanceId: "one", targetIds: [a.id] });
        await one.setExecution({ type: "function", name: "base" }, [{ target: a.id }]);
        expect(changes.at(-1)).toMatchObject({ instanceId: "one", executionIds: ["function/base"] });
        await one.setExecution({ type: "function", name: "top" }, [{ include: "function/base" }]);
        await one.deleteTarget(a.id);
        const last = changes.at(-1)!;
        expect(last.instanceId).toBe("one");
        expect(last.targetIds).toEqual([a.id]);
        expect([...(last.executionIds ?? [])].sort()).toEqual(["function/base", "function/top"]);
        stop();
      });

      it("loads the given targets and executions that exist", async () => {
        const one = store.forInstance("one");
        const a = await one.createTarget(hook("a"));
        const b = await one.createTarget(hook("b"));
        const e = await one.setExecution(method, [{ target: a.id }]);
        const other = await store.createTarget(hook("other"));
        expect(await one.load({ targetIds: [b.id, "404", other.id], executionIds: [e!.id, "request"] })).toEqual({
          targets: [b],
          executions: [e],
        });
        expect(await one.load({})).toEqual({ targets: [], executions: [] });
      });
    });

    describe("snapshots and watching", () => {
      it("returns a snapshot of all targets and executions", async () => {
        const a = await store.createTarget(hook("a"));
        const e = await store.setExecution(method, [{ target: a.id }]);
        const snap = await store.snapshot();
        expect(snap.targets).toEqual([a]);
        expect(snap.executions).toEqual([e]);
      });

      it("tells watchers of each change before the write resolves, until unwatched", async () => {
        let calls = 0;
        const stop = store.watch(() => calls++);
        const a = await store.createTarget(hook("a"));
        expect(calls).toBeGreaterThanOrEqual(1);
        let before = calls;
        await store.updateTarget(a.id, { timeoutMs: 100 });
        expect(calls).toBeGreaterThan(before);
        before = calls;
        await store.setExecution(all, [{ target: a.id }]);
        expect(calls).toBeGreaterThan(before);
        before = calls;
        await store.deleteTarget(a.id);
        expect(calls).toBeGreaterThan(before);
        stop();
        before = calls;
        await store.createTarget(hook("b"));
        await new Promise((r) => setTimeout(r, 50));
        expect(calls).toBe(before);
      });
    });
  });
}
