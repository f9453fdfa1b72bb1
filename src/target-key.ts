import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * PublicKeyType is the kind of a target's public key: "rsa" (JWE with
 * RSA-OAEP-256) or "ec" (JWE with ECDH-ES+A256KW).
 */
export type PublicKeyType = "rsa" | "ec";

/**
 * TargetPublicKey is a public key of a target, what JWE payloads are
 * encrypted to while it is the target's active key (ZITADEL v4's target
 * public keys). A new key is inactive; at most one key of a target is active.
 */
export interface TargetPublicKey {
  /** Key ID, assigned by the store; the "kid" of JWE payloads encrypted to it. */
  readonly keyId: string;
  readonly targetId: string;
  /** The key as PEM, as it was added. */
  readonly publicKey: string;
  /** `SHA256:` and the unpadded base64 of the SHA-256 of the key's DER (SubjectPublicKeyInfo), as ZITADEL computes it. */
  readonly fingerprint: string;
  readonly keyType: PublicKeyType;
  /** Whether payloads are encrypted to this key: activated, and not expired as of the read. */
  readonly active: boolean;
  /** When the key stops being used; undefined when it does not expire. */
  readonly expirationDate?: Date;
  readonly creationDate: Date;
  /** When the key was added, activated or deactivated last. */
  readonly changeDate: Date;
}

/**
 * PublicKeyInput is what adds a public key to a target.
 */
export interface PublicKeyInput {
  /**
   * The key as PEM: a "PUBLIC KEY" block (SubjectPublicKeyInfo), UTF-8 text
   * or its bytes, 1 to maxPublicKeyBytes bytes. Text around the block is
   * ignored, as Go's pem.Decode ignores it.
   */
  readonly publicKey: string | Uint8Array;
  /** When the key stops being used, in the future; default never. */
  readonly expirationDate?: Date;
}

/** maxPublicKeyBytes is the largest PEM a public key may have, 8192 bytes, as in ZITADEL. */
export const maxPublicKeyBytes = 8192;

/** maxPublicKeysPerTarget is how many public keys one target may have, 100. */
export const maxPublicKeysPerTarget = 100;

/** minRsaKeyBits is the smallest RSA key accepted, 2048 bits. */
export const minRsaKeyBits = 2048;

/** The EC curves accepted (those JWE's ECDH-ES supports), by Node.js name, and their JOSE names. */
const curves: ReadonlyMap<string, string> = new Map([
  ["prime256v1", "P-256"],
  ["secp384r1", "P-384"],
  ["secp521r1", "P-521"],
]);

/**
 * ParsedPublicKey is a public key read from PEM (see parsePublicKey).
 */
export interface ParsedPublicKey {
  /** The PEM text as given. */
  readonly pem: string;
  readonly key: KeyObject;
  readonly keyType: PublicKeyType;
  readonly fingerprint: string;
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

const pemBlock = /-----BEGIN ([^\r\n-]*)-----\r?\n([\s\S]*?)-----END \1-----/;

/**
 * parsePublicKey reads a target's public key as ZITADEL does (the first PEM
 * block, which must hold a SubjectPublicKeyInfo of an RSA or EC key) and
 * checks that it can encrypt JWE payloads: an RSA key has at least 2048 bits,
 * an EC key uses P-256, P-384 or P-521. Throws a ConnectError with
 * Code.InvalidArgument naming `public_key` otherwise, or when the PEM is
 * empty, longer than maxPublicKeyBytes, not UTF-8 or contains NUL.
 */
export function parsePublicKey(input: string | Uint8Array): ParsedPublicKey {
  let pem: string;
  if (typeof input === "string") {
    pem = input;
    if (Buffer.byteLength(pem) > maxPublicKeyBytes) throw invalid(`public_key must be at most ${maxPublicKeyBytes} bytes`);
  } else if (input instanceof Uint8Array) {
    if (input.length > maxPublicKeyBytes) throw invalid(`public_key must be at most ${maxPublicKeyBytes} bytes`);
    try {
      pem = new TextDecoder("utf-8", { fatal: true }).decode(input);
    } catch {
      throw invalid("public_key must be PEM text (UTF-8)");
    }
  } else {
    throw invalid("public_key must be a string or bytes");
  }
  if (pem.trim() === "") throw invalid("public_key must not be empty");
  if (pem.includes("\0")) throw invalid("public_key must not contain NUL characters");
  const block = pemBlock.exec(pem);
  if (block === null) throw invalid('public_key must be a PEM block ("-----BEGIN PUBLIC KEY-----")');
  // PEM bodies may carry RFC 1421 headers ("Name: value" lines before an empty line); Go skips them.
  let body = block[2]!;
  const headerEnd = /^(?:[^\r\n:]+:[^\r\n]*\r?\n)+\r?\n/.exec(body);
  if (headerEnd !== null) body = body.slice(headerEnd[0].length);
  const base64 = body.replace(/\s+/g, "");
  if (base64 === "" || base64.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) {
    throw invalid("public_key: the PEM block is not valid base64");
  }
  const der = Buffer.from(base64, "base64");
  let key: KeyObject;
  try {
    key = createPublicKey({ key: der, format: "der", type: "spki" });
  } catch {
    throw invalid('public_key is not a PKIX public key ("-----BEGIN PUBLIC KEY-----")');
  }
  const keyType = key.asymmetricKeyType;
  if (keyType === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < minRsaKeyBits) throw invalid(`public_key: an RSA key must have at least ${minRsaKeyBits} bits, got ${bits}`);
  } else if (keyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? "";
    if (!curves.has(curve)) throw invalid(`public_key: an EC key must use P-256, P-384 or P-521, got ${curve || "an unnamed curve"}`);
  } else {
    throw invalid(`public_key must be an RSA or EC key, got ${keyType ?? "an unknown type"}`);
  }
  const fingerprint = "SHA256:" + createHash("sha256").update(der).digest("base64").replace(/=+$/, "");
  return { pem, key, keyType, fingerprint };
}

/**
 * validatePublicKeyInput checks a new public key (see parsePublicKey) and its
 * expiration date, which must be a valid date not before `now`. Throws a
 * ConnectError with Code.InvalidArgument naming the field.
 */
export function validatePublicKeyInput(input: PublicKeyInput, now: Date): ParsedPublicKey & { readonly expirationDate?: Date } {
  const value = input as unknown as Record<string, unknown> | null | undefined;
  if (value === null || typeof value !== "object") throw invalid("public key input must be an object");
  const parsed = parsePublicKey(value.publicKey as string | Uint8Array);
  const expiration = value.expirationDate;
  if (expiration === undefined) return parsed;
  if (!(expiration instanceof Date) || Number.isNaN(expiration.getTime())) throw invalid("expiration_date must be a valid date");
  if (expiration.getTime() < now.getTime()) throw invalid("expiration_date must not be in the past");
  return { ...parsed, expirationDate: new Date(expiration.getTime()) };
}

/**
 * isKeyUsable tells whether an active key has not expired at `now`: an
 * expired key counts as deactivated.
 */
export function isKeyUsable(expirationDate: Date | undefined, now: Date): boolean {
  return expirationDate === undefined || expirationDate.getTime() > now.getTime();
}
