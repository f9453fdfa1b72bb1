import { generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { exportJWK } from "jose";
import { newId } from "../id.js";
import { validateInstanceId } from "../store/action-store.js";

/**
 * SigningAlgorithm is the JWS algorithm of an instance's signing keys:
 * "RS256" (RSA 2048, ZITADEL's default web key) or "ES256" (P-256).
 */
export type SigningAlgorithm = "RS256" | "ES256";

/**
 * PublicJwk is the public part of a signing key as a JSON Web Key (RFC 7517),
 * as a JWKS publishes it: `{kty, kid, alg, use: "sig", n, e}` for RSA,
 * `{kty, kid, alg, use: "sig", crv, x, y}` for EC.
 */
export interface PublicJwk {
  readonly kty: string;
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly use: "sig";
  readonly n?: string;
  readonly e?: string;
  readonly crv?: string;
  readonly x?: string;
  readonly y?: string;
}

/**
 * JsonWebKeySet is a JWKS document: `{"keys": [...]}`.
 */
export interface JsonWebKeySet {
  readonly keys: readonly PublicJwk[];
}

/**
 * SigningKey is a key that signs an instance's JWT payloads (the instance's
 * "web key" in ZITADEL's words).
 */
export interface SigningKey {
  /** Key ID, the "kid" of the JWS header and of the JWK. */
  readonly keyId: string;
  /** The instance the key belongs to, "" for the default instance. */
  readonly instanceId: string;
  readonly algorithm: SigningAlgorithm;
  readonly privateKey: KeyObject;
  readonly publicJwk: PublicJwk;
  readonly creationDate: Date;
  /** Until when the key signs; the next use after it generates a new key. */
  readonly signsUntil: Date;
  /** Until when the public key is published (in the JWKS). */
  readonly expiresAt: Date;
}

/**
 * SigningKeySource keeps the signing keys of instances: the active key that
 * signs JWT (and JWE) payloads, generated on first use and replaced when its
 * signing lifetime is over or on rotate, and the public keys that a JWKS
 * publishes: the active key's and those of the keys it replaced, until they
 * expire, so that payloads signed with an older key can still be verified.
 */
export interface SigningKeySource {
  /**
   * signingKey returns the active key of an instance, generating one when
   * the instance has none that may still sign. Code.InvalidArgument for a
   * bad instance ID (see validateInstanceId).
   */
  signingKey(instanceId: string): Promise<SigningKey>;
  /**
   * publicKeys returns the JWKS of an instance: the public keys that have not
   * expired, newest first; none before the first key was generated.
   */
  publicKeys(instanceId: string): Promise<JsonWebKeySet>;
  /**
   * rotate makes a new key the instance's active key at once; the key that
   * was active stops signing and stays published until it expires.
   */
  rotate(instanceId: string): Promise<SigningKey>;
  /** close releases the source's resources. */
  close(): Promise<void>;
}

/**
 * SigningKeyLifetimes configures how long keys live. Every field is optional.
 */
export interface SigningKeyLifetimes {
  /** Algorithm of new keys, default "RS256". */
  readonly algorithm?: SigningAlgorithm;
  /**
   * How long a key signs, from its creation, in milliseconds: default
   * 6 hours (as ZITADEL's former signing keys). The first use after it
   * generates a new key.
   */
  readonly signingLifetimeMs?: number;
  /**
   * How long a key's public part is published, from its creation, in
   * milliseconds: default 30 hours, at least signingLifetimeMs. A payload
   * signed with a key can be verified until then.
   */
  readonly publishedLifetimeMs?: number;
}

/**
 * MemorySigningKeySourceOptions configures createMemorySigningKeySource.
 */
export interface MemorySigningKeySourceOptions extends SigningKeyLifetimes {
  /** Clock, default `() => new Date()`. */
  readonly now?: () => Date;
}

/** defaultSigningLifetimeMs is how long a signing key signs by default: 6 hours. */
export const defaultSigningLifetimeMs = 6 * 3_600_000;

/** defaultPublishedLifetimeMs is how long a signing key is published by default: 30 hours. */
export const defaultPublishedLifetimeMs = 30 * 3_600_000;

/**
 * ResolvedLifetimes are SigningKeyLifetimes with their defaults, checked.
 */
export interface ResolvedLifetimes {
  readonly algorithm: SigningAlgorithm;
  readonly signingLifetimeMs: number;
  readonly publishedLifetimeMs: number;
}

/**
 * resolveLifetimes applies the defaults of SigningKeyLifetimes and checks
 * them: Code.InvalidArgument for an unknown algorithm, a lifetime that is not
 * a positive number, or a published lifetime shorter than the signing one.
 */
export function resolveLifetimes(options: SigningKeyLifetimes): ResolvedLifetimes {
  const algorithm = options.algorithm ?? "RS256";
  if (algorithm !== "RS256" && algorithm !== "ES256") {
    throw new ConnectError(`algorithm must be "RS256" or "ES256", got "${String(algorithm)}"`, Code.InvalidArgument);
  }
  const signingLifetimeMs = options.signingLifetimeMs ?? defaultSigningLifetimeMs;
  const publishedLifetimeMs = options.publishedLifetimeMs ?? Math.max(defaultPublishedLifetimeMs, signingLifetimeMs);
  for (const [name, value] of [
    ["signingLifetimeMs", signingLifetimeMs],
    ["publishedLifetimeMs", publishedLifetimeMs],
  ] as const) {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
      throw new ConnectError(`${name} must be a positive number of milliseconds`, Code.InvalidArgument);
    }
  }
  if (publishedLifetimeMs < signingLifetimeMs) {
    throw new ConnectError("publishedLifetimeMs must be at least signingLifetimeMs", Code.InvalidArgument);
  }
  return { algorithm, signingLifetimeMs, publishedLifetimeMs };
}

const generate = promisify(generateKeyPair);

/**
 * newSigningKey generates a signing key for an instance, created at `now`.
 */
export async function newSigningKey(instanceId: string, lifetimes: ResolvedLifetimes, now: Date): Promise<SigningKey> {
  const { privateKey, publicKey } =
    lifetimes.algorithm === "RS256"
      ? await generate("rsa", { modulusLength: 2048 })
      : await generate("ec", { namedCurve: "P-256" });
  const keyId = newId();
  return Object.freeze({
    keyId,
    instanceId,
    algorithm: lifetimes.algorithm,
    privateKey,
    publicJwk: await publicJwkOf(publicKey, keyId, lifetimes.algorithm),
    creationDate: now,
    signsUntil: new Date(now.getTime() + lifetimes.signingLifetimeMs),
    expiresAt: new Date(now.getTime() + lifetimes.publishedLifetimeMs),
  });
}

/**
 * publicJwkOf returns the JWK of a public key, with its key ID, algorithm and `use: "sig"`.
 */
export async function publicJwkOf(publicKey: KeyObject, keyId: string, algorithm: SigningAlgorithm): Promise<PublicJwk> {
  const jwk = await exportJWK(publicKey);
  const out: Record<string, string> = { kty: jwk.kty!, kid: keyId, alg: algorithm, use: "sig" };
  for (const member of ["n", "e", "crv", "x", "y"] as const) {
    if (typeof jwk[member] === "string") out[member] = jwk[member];
  }
  return Object.freeze(out) as unknown as PublicJwk;
}

/**
 * createMemorySigningKeySource returns a SigningKeySource that keeps the keys
 * in this process: every process (replica) has keys of its own, and they are
 * gone on restart. With several replicas behind one JWKS URL, use the
 * PostgreSQL source of "connect-actions/postgres".
 */
export function createMemorySigningKeySource(options: MemorySigningKeySourceOptions = {}): SigningKeySource {
  const lifetimes = resolveLifetimes(options);
  const now = options.now ?? (() => new Date());
  /** Keys per instance, newest first. */
  const instances = new Map<string, SigningKey[]>();
  const generating = new Map<string, Promise<SigningKey>>();
  let closed = false;

  const open = () => {
    if (closed) throw new ConnectError("signing key source is closed", Code.Unavailable);
  };
  const live = (instanceId: string, date: Date): SigningKey[] => {
    const keys = (instances.get(instanceId) ?? []).filter((k) => k.expiresAt.getTime() > date.getTime());
    if (keys.length === 0) instances.delete(instanceId);
    else instances.set(instanceId, keys);
    return keys;
  };
  /** add makes `key` the active key; the previous ones stop signing now. */
  const add = (key: SigningKey) => {
    const date = key.creationDate;
    const previous = live(key.instanceId, date).map((k) =>
      k.signsUntil.getTime() > date.getTime() ? Object.freeze({ ...k, signsUntil: date }) : k,
    );
    instances.set(key.instanceId, [key, ...previous]);
    return key;
  };
  const generateFor = (instanceId: string): Promise<SigningKey> => {
    let pending = generating.get(instanceId);
    if (pending === undefined) {
      pending = newSigningKey(instanceId, lifetimes, now())
        .then(add)
        .finally(() => generating.delete(instanceId));
      generating.set(instanceId, pending);
    }
    return pending;
  };

  return {
    async signingKey(instanceId) {
      open();
      validateInstanceId(instanceId);
      const date = now();
      const active = live(instanceId, date)[0];
      if (active !== undefined && active.signsUntil.getTime() > date.getTime()) return active;
      return generateFor(instanceId);
    },
    async publicKeys(instanceId) {
      open();
      validateInstanceId(instanceId);
      return { keys: live(instanceId, now()).map((k) => k.publicJwk) };
    },
    async rotate(instanceId) {
      open();
      validateInstanceId(instanceId);
      await generating.get(instanceId)?.catch(() => undefined);
      return add(await newSigningKey(instanceId, lifetimes, now()));
    },
    async close() {
      closed = true;
      instances.clear();
    },
  };
}
