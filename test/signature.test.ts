import { createHmac } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { signPayload, verifySignature } from "../src/dispatch/signature.js";

const key = "k".repeat(36);
const body = '{"fullMethod":"/a.B/C","request":{}}';
const at = new Date("2026-01-02T03:04:05Z");
const t = Math.floor(at.getTime() / 1000);

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectError);
    expect((e as ConnectError).code).toBe(Code.Unauthenticated);
    return (e as ConnectError).rawMessage;
  }
  return "verified";
}

describe("signPayload", () => {
  it("writes t=<unix>,v1=<hex HMAC-SHA256 of '<t>.<body>'>", () => {
    const expected = createHmac("sha256", key).update(`${t}.${body}`).digest("hex");
    expect(signPayload(body, key, { time: at })).toBe(`t=${t},v1=${expected}`);
  });

  it("signs bytes and strings alike", () => {
    expect(signPayload(Buffer.from(body), key, { time: at })).toBe(signPayload(body, key, { time: at }));
  });

  it("writes one v1 per key", () => {
    expect(signPayload(body, [key, "other"], { time: at })).toMatch(/^t=\d+,v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
  });

  it("signs with every key as createHmac does, with many keys in turn and keys that are not ASCII", () => {
    // More keys than the signer keeps imported at once, each used twice, some reused after others.
    const keys = Array.from({ length: 1500 }, (_, i) => (i % 7 === 0 ? `ключ-${i}-🔑` : `${"x".repeat(i % 100)}${i}`));
    for (const k of [...keys, ...keys.slice(0, 50)]) {
      const expected = createHmac("sha256", Buffer.from(k, "utf8")).update(`${t}.${body}`).digest("hex");
      expect(signPayload(body, k, { time: at })).toBe(`t=${t},v1=${expected}`);
    }
  });

  it("refuses an empty key", () => {
    expect(() => signPayload(body, "")).toThrow(ConnectError);
    expect(() => signPayload(body, [])).toThrow(ConnectError);
  });
});

describe("verifySignature", () => {
  const header = signPayload(body, key, { time: at });

  it("returns the signing time of a valid signature", () => {
    expect(verifySignature(body, header, key, { now: at })).toEqual(new Date(t * 1000));
  });

  it("accepts signatures up to the tolerance (default 300 s) and rejects older ones", () => {
    expect(reason(() => verifySignature(body, header, key, { now: new Date(at.getTime() + 300_000) }))).toBe("verified");
    expect(reason(() => verifySignature(body, header, key, { now: new Date(at.getTime() + 301_000) }))).toBe("signature too old");
    expect(reason(() => verifySignature(body, header, key, { now: new Date(at.getTime() + 301_000), toleranceSeconds: 400 }))).toBe("verified");
    expect(reason(() => verifySignature(body, header, key, { now: new Date(at.getTime() + 9e9), toleranceSeconds: 0 }))).toBe("verified");
  });

  it("rejects a tampered body, a wrong key and a tampered time", () => {
    expect(reason(() => verifySignature(body + " ", header, key, { now: at }))).toBe("no valid signature");
    expect(reason(() => verifySignature(body, header, "x".repeat(36), { now: at }))).toBe("no valid signature");
    const shifted = header.replace(`t=${t}`, `t=${t + 1}`);
    expect(reason(() => verifySignature(body, shifted, key, { now: at }))).toBe("no valid signature");
  });

  it("says when there is no signature or a malformed header", () => {
    expect(reason(() => verifySignature(body, undefined, key))).toBe("not signed");
    expect(reason(() => verifySignature(body, "", key))).toBe("not signed");
    for (const bad of ["garbage", "t=abc,v1=00", "v1=" + "0".repeat(64), `t=${t}`, `t=${t},t=${t},v1=${"0".repeat(64)}`]) {
      expect(reason(() => verifySignature(body, bad, key, { now: at }))).toBe("invalid signature header");
    }
  });

  it("supports key rotation: any v1 value against any of several keys", () => {
    const rotated = signPayload(body, ["new-key", key], { time: at });
    expect(reason(() => verifySignature(body, rotated, key, { now: at }))).toBe("verified");
    expect(reason(() => verifySignature(body, rotated, "new-key", { now: at }))).toBe("verified");
    expect(reason(() => verifySignature(body, header, ["new-key", key], { now: at }))).toBe("verified");
    expect(reason(() => verifySignature(body, header, ["new-key", "older"], { now: at }))).toBe("no valid signature");
  });

  it("ignores unknown schemes next to a valid v1", () => {
    expect(reason(() => verifySignature(body, `${header},v0=abc`, key, { now: at }))).toBe("verified");
  });
});
