import { createHmac, createSecretKey, type KeyObject, timingSafeEqual } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * signatureHeader is the name of the HTTP header that carries the signature of
 * a target call: "ZITADEL-Signature".
 */
export const signatureHeader = "ZITADEL-Signature";

/**
 * SignOptions configures signPayload.
 */
export interface SignOptions {
  /** Signing time, default now. */
  readonly time?: Date;
}

/**
 * signPayload returns the value of the ZITADEL-Signature header for a body:
 * `t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>.<body>")>`, with one v1
 * value per key when several are given (key rotation).
 */
export function signPayload(payload: string | Uint8Array, key: string | readonly string[], options: SignOptions = {}): string {
  if (typeof key === "string" && key !== "") {
    // One key, the case of every target call: no list.
    const t = Math.floor((options.time?.getTime() ?? Date.now()) / 1000);
    return `t=${t},v1=${hmac(key, t, payload).toString("hex")}`;
  }
  const keys = typeof key === "string" ? [key] : key;
  if (keys.length === 0 || keys.some((k) => k === "")) {
    throw new ConnectError("signPayload needs at least one non-empty key", Code.InvalidArgument);
  }
  const t = Math.floor((options.time ?? new Date()).getTime() / 1000);
  let header = `t=${t}`;
  for (const k of keys) {
    header += `,v1=${hmac(k, t, payload).toString("hex")}`;
  }
  return header;
}

/**
 * VerifyOptions configures verifySignature.
 */
export interface VerifyOptions {
  /** How old a signature may be, in seconds; default 300. 0 disables the check. */
  readonly toleranceSeconds?: number;
  /** Current time, default now. */
  readonly now?: Date;
}

/**
 * verifySignature checks the ZITADEL-Signature header of a target call against
 * the exact body received and one or more keys (during a rotation, any key may
 * match any v1 value). The header may be given as Node.js gives it
 * (`req.headers["zitadel-signature"]`, a string or a list of strings). It returns the signing time, or throws a ConnectError
 * with Code.Unauthenticated whose message says why: "not signed", "invalid
 * signature header", "signature too old" or "no valid signature".
 */
export function verifySignature(
  payload: string | Uint8Array,
  signature: string | readonly string[] | null | undefined,
  key: string | readonly string[],
  options: VerifyOptions = {},
): Date {
  // Node.js types a header as a string or a list of strings: a list is read as one comma-separated value.
  const header = typeof signature === "string" || signature === undefined || signature === null ? signature : signature.join(",");
  if (header === undefined || header === null || header.trim() === "") {
    throw new ConnectError("not signed", Code.Unauthenticated);
  }
  let t: number | undefined;
  const signatures: Buffer[] = [];
  for (const part of header.split(",")) {
    const eq = part.indexOf("=");
    if (eq < 0) {
      throw new ConnectError("invalid signature header", Code.Unauthenticated);
    }
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === "t") {
      if (!/^\d{1,12}$/.test(value) || t !== undefined) {
        throw new ConnectError("invalid signature header", Code.Unauthenticated);
      }
      t = Number(value);
    } else if (name === "v1" && /^[0-9a-fA-F]{64}$/.test(value)) {
      signatures.push(Buffer.from(value, "hex"));
    }
  }
  if (t === undefined || signatures.length === 0) {
    throw new ConnectError("invalid signature header", Code.Unauthenticated);
  }
  const tolerance = options.toleranceSeconds ?? 300;
  const nowSeconds = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (tolerance > 0 && nowSeconds - t > tolerance) {
    throw new ConnectError("signature too old", Code.Unauthenticated);
  }
  for (const k of typeof key === "string" ? [key] : key) {
    const expected = hmac(k, t, payload);
    if (signatures.some((s) => timingSafeEqual(s, expected))) {
      return new Date(t * 1000);
    }
  }
  throw new ConnectError("no valid signature", Code.Unauthenticated);
}

/**
 * The keys of recent signatures as KeyObjects, so that a key's bytes are not
 * made again for every call: at most maxCachedKeys, then the cache starts over.
 */
const keyObjects = new Map<string, KeyObject>();
const maxCachedKeys = 1000;

function keyObjectOf(key: string): KeyObject {
  let keyObject = keyObjects.get(key);
  if (keyObject === undefined) {
    if (keyObjects.size >= maxCachedKeys) keyObjects.clear();
    keyObject = createSecretKey(Buffer.from(key, "utf8"));
    keyObjects.set(key, keyObject);
  }
  return keyObject;
}

function hmac(key: string, t: number, payload: string | Uint8Array): Buffer {
  return createHmac("sha256", keyObjectOf(key)).update(`${t}.`).update(payload).digest();
}
