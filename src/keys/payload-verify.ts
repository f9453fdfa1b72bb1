import { createPrivateKey, type KeyObject, type webcrypto } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type CompactDecryptGetKey,
  compactDecrypt,
  compactVerify,
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
} from "jose";

/**
 * JwksInput is where the public keys that sign payloads come from:
 *
 * - the URL of a JWKS, for example "https://auth.example.com/oauth/v2/keys"
 *   (fetched when needed, cached, fetched again for an unknown key ID at most
 *   every `jwksCooldownMs`);
 * - a JWKS document, `{"keys": [...]}`;
 * - a function that returns the key for a JWS header, such as jose's
 *   createRemoteJWKSet or createLocalJWKSet return.
 */
export type JwksInput = string | URL | { readonly keys: readonly object[] } | JWTVerifyGetKey;

/**
 * VerifyPayloadOptions configures verifyJwtPayload.
 */
export interface VerifyPayloadOptions {
  /** The public keys the payload may be signed with. */
  readonly jwks: JwksInput;
  /**
   * For a JWKS URL: how long after a fetch a token with an unknown key ID
   * may fetch it again, in milliseconds. Default 30 000 (jose's default).
   */
  readonly jwksCooldownMs?: number;
  /** The JWS algorithms accepted, default RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 and EdDSA. */
  readonly algorithms?: readonly string[];
}

/**
 * PrivateKeyInput is a private key: a KeyObject, a CryptoKey, a PEM string
 * (PKCS #8, or PKCS #1 / SEC 1) or a private JWK.
 */
export type PrivateKeyInput = KeyObject | webcrypto.CryptoKey | string | JWK;

/**
 * DecryptPayloadOptions configures decryptJwePayload.
 */
export interface DecryptPayloadOptions extends VerifyPayloadOptions {
  /**
   * The private key of the target's active public key, or a function that
   * returns the private key of a key ID (the "kid" of the JWE header), for
   * targets that rotate their keys.
   */
  readonly privateKey: PrivateKeyInput | ((keyId: string | undefined) => PrivateKeyInput | Promise<PrivateKeyInput>);
}

const defaultAlgorithms = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];

/** Remote JWKS, one per URL and cooldown, so that their caches are shared between calls. */
const remoteSets = new Map<string, JWTVerifyGetKey>();

function keySetOf(options: VerifyPayloadOptions): JWTVerifyGetKey {
  const { jwks } = options;
  if (typeof jwks === "function") return jwks;
  if (typeof jwks === "string" || jwks instanceof URL) {
    const url = new URL(jwks);
    const cooldown = options.jwksCooldownMs ?? 30_000;
    const cacheKey = `${cooldown} ${url.href}`;
    let set = remoteSets.get(cacheKey);
    if (set === undefined) {
      if (remoteSets.size >= 100) remoteSets.clear();
      set = createRemoteJWKSet(url, { cooldownDuration: cooldown });
      remoteSets.set(cacheKey, set);
    }
    return set;
  }
  if (jwks !== null && typeof jwks === "object" && Array.isArray(jwks.keys)) {
    return createLocalJWKSet(jwks as unknown as JSONWebKeySet);
  }
  throw new ConnectError("jwks must be a URL, a JWKS document or a key function", Code.InvalidArgument);
}

function tokenText(token: string | Uint8Array): string {
  return (typeof token === "string" ? token : new TextDecoder().decode(token)).trim();
}

/**
 * failure turns an error of jose into a ConnectError: Code.Unavailable when
 * the JWKS could not be fetched, Code.Unauthenticated otherwise (a token that
 * is malformed, signed with an unknown key or not signed by it).
 */
function failure(what: string, e: unknown): ConnectError {
  if (e instanceof ConnectError) return e;
  const unreachable =
    e instanceof errors.JWKSTimeout ||
    (e instanceof Error && !(e instanceof errors.JOSEError)) ||
    (e instanceof errors.JOSEError && e.message.startsWith("Expected 200 OK"));
  if (unreachable) {
    return new ConnectError(`${what}: the JWKS could not be fetched: ${e.message}`, Code.Unavailable, undefined, undefined, e);
  }
  if (e instanceof errors.JWKSNoMatchingKey) {
    return new ConnectError(`${what}: no key of the JWKS matches the token's kid`, Code.Unauthenticated, undefined, undefined, e);
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) {
    return new ConnectError(`${what}: the signature does not verify`, Code.Unauthenticated, undefined, undefined, e);
  }
  const message = e instanceof Error ? e.message : String(e);
  return new ConnectError(`${what}: ${message}`, Code.Unauthenticated, undefined, undefined, e);
}

function parsePayload<T>(what: string, payload: Uint8Array): T {
  try {
    return JSON.parse(new TextDecoder().decode(payload)) as T;
  } catch {
    throw new ConnectError(`${what}: the payload is not JSON`, Code.InvalidArgument);
  }
}

/**
 * verifyJwtPayload verifies the body of a call of a "jwt" target, a JWS in
 * compact form (pass the raw body, a string or bytes), against the public
 * keys of the instance that signed it (`jwks`, for example the JWKS URL of
 * the service, which the sample serves at /oauth/v2/keys) and returns its
 * payload: the JSON payload a "json" target would receive, parsed. Rejects
 * with a ConnectError: Code.Unauthenticated for a token that is malformed,
 * signed with another key or algorithm, or not verified; Code.Unavailable
 * when a JWKS URL cannot be fetched; Code.InvalidArgument for a payload that
 * is not JSON.
 *
 * The token has no expiry (as in ZITADEL): to refuse old calls, verify the
 * ZITADEL-Signature header too (verifySignature), whose time it checks.
 */
export async function verifyJwtPayload<T = unknown>(token: string | Uint8Array, options: VerifyPayloadOptions): Promise<T> {
  const what = "invalid JWT payload";
  const keys = keySetOf(options);
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(tokenText(token), keys as never, {
      algorithms: [...(options.algorithms ?? defaultAlgorithms)],
    }));
  } catch (e) {
    throw failure(what, e);
  }
  return parsePayload<T>(what, payload);
}

/**
 * decryptJwePayload decrypts the body of a call of a "jwe" target, a JWE in
 * compact form (RSA-OAEP-256 or ECDH-ES+A256KW, A256GCM) encrypted to the
 * target's active public key, with the matching private key, verifies the
 * signed JWT inside it against `jwks` (see verifyJwtPayload) and returns its
 * payload, the JSON payload parsed. Rejects with a ConnectError:
 * Code.Unauthenticated for a token that does not decrypt with the key or
 * whose inner JWT does not verify; Code.Unavailable and
 * Code.InvalidArgument as verifyJwtPayload.
 */
export async function decryptJwePayload<T = unknown>(token: string | Uint8Array, options: DecryptPayloadOptions): Promise<T> {
  const what = "invalid JWE payload";
  const keys = keySetOf(options);
  const { privateKey } = options;
  const keyFor: CompactDecryptGetKey = async (header) =>
    toPrivateKey(typeof privateKey === "function" ? await privateKey(header.kid) : privateKey) as never;
  let inner: Uint8Array;
  try {
    ({ plaintext: inner } = await compactDecrypt(tokenText(token), keyFor, {
      keyManagementAlgorithms: ["RSA-OAEP-256", "ECDH-ES+A256KW"],
      contentEncryptionAlgorithms: ["A256GCM"],
    }));
  } catch (e) {
    if (e instanceof ConnectError) throw e;
    const message = e instanceof errors.JWEDecryptionFailed ? "it cannot be decrypted with this key" : e instanceof Error ? e.message : String(e);
    throw new ConnectError(`${what}: ${message}`, Code.Unauthenticated, undefined, undefined, e);
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(new TextDecoder().decode(inner), keys as never, {
      algorithms: [...(options.algorithms ?? defaultAlgorithms)],
    }));
  } catch (e) {
    throw failure(what, e);
  }
  return parsePayload<T>(what, payload);
}

/** toPrivateKey turns a PEM string into a KeyObject; other inputs pass as they are. */
function toPrivateKey(key: PrivateKeyInput): KeyObject | webcrypto.CryptoKey | JWK {
  if (typeof key !== "string") return key;
  try {
    return createPrivateKey(key);
  } catch (e) {
    throw new ConnectError("privateKey is not a private key in PEM", Code.InvalidArgument, undefined, undefined, e);
  }
}
