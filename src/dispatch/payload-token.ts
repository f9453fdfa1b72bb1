import type { KeyObject } from "node:crypto";
import { CompactEncrypt, CompactSign } from "jose";
import type { SigningKeySource } from "../keys/signing-key-source.js";
import { isKeyUsable, parsePublicKey } from "../target-key.js";
import type { Target, TargetEncryptionKey } from "../target.js";

/**
 * PayloadEncodingError is why a JWT or JWE payload could not be made; the
 * target is not called. `permanent` is true when trying again cannot help
 * until the configuration changes.
 */
export class PayloadEncodingError extends Error {
  override name = "PayloadEncodingError";
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/**
 * PayloadEncoder turns the JSON body of a target call into the body the
 * target's payload type asks for.
 */
export interface PayloadEncoder {
  /**
   * encode returns the body for a "jwt" or "jwe" target (see PayloadType),
   * the JSON itself for a "json" target; it
   * rejects with a PayloadEncodingError when the instance's signing key or
   * the target's active public key is missing or unusable.
   */
  encode(target: Target, json: string): Promise<string>;
}

/** The key management algorithm of JWE payloads, by public key type. */
const keyAlgorithms = { rsa: "RSA-OAEP-256", ec: "ECDH-ES+A256KW" } as const;

const encoder = new TextEncoder();

/**
 * createPayloadEncoder returns the PayloadEncoder of a dispatcher, as ZITADEL
 * builds the bodies:
 *
 * - JWT: a JWS in compact form whose payload is exactly the JSON body, signed
 *   with the active key of the target's instance; protected header
 *   `{alg, kid, typ: "JWT"}`. No claims are added.
 * - JWE: that JWT, encrypted in compact form to the target's active public
 *   key; header `{alg: "RSA-OAEP-256" | "ECDH-ES+A256KW", enc: "A256GCM",
 *   kid: <key ID>, typ: "JWT", cty: "JWT"}`.
 *
 * Imported public keys are kept per key ID (at most 1000).
 */
export function createPayloadEncoder(signingKeys: SigningKeySource | undefined): PayloadEncoder {
  const imported = new Map<string, { readonly pem: string; readonly key: KeyObject; readonly alg: string }>();

  const sign = async (target: Target, json: string): Promise<string> => {
    if (signingKeys === undefined) {
      throw new PayloadEncodingError(
        `target "${target.name}" has payload type ${target.payloadType}, but no signing key source is configured (signingKeys)`,
        true,
      );
    }
    let key;
    try {
      key = await signingKeys.signingKey(target.instanceId);
    } catch (e) {
      throw new PayloadEncodingError(
        `the signing key of instance "${target.instanceId}" is unavailable: ${e instanceof Error ? e.message : String(e)}`,
        false,
      );
    }
    return new CompactSign(encoder.encode(json))
      .setProtectedHeader({ alg: key.algorithm, kid: key.keyId, typ: "JWT" })
      .sign(key.privateKey);
  };

  const encryptionKeyOf = (target: Target, active: TargetEncryptionKey | undefined) => {
    if (active === undefined || !isKeyUsable(active.expirationDate, new Date())) {
      throw new PayloadEncodingError(
        `target "${target.name}" has payload type jwe, but no active public key${active === undefined ? "" : ` (key "${active.keyId}" has expired)`}`,
        false,
      );
    }
    let entry = imported.get(active.keyId);
    if (entry === undefined || entry.pem !== active.publicKey) {
      let parsed;
      try {
        parsed = parsePublicKey(active.publicKey);
      } catch (e) {
        throw new PayloadEncodingError(
          `the public key "${active.keyId}" of target "${target.name}" is unusable: ${e instanceof Error ? e.message : String(e)}`,
          false,
        );
      }
      if (imported.size >= 1000) imported.clear();
      entry = { pem: active.publicKey, key: parsed.key, alg: keyAlgorithms[parsed.keyType] };
      imported.set(active.keyId, entry);
    }
    return entry;
  };

  return {
    async encode(target, json) {
      if (target.payloadType === "jwt") return sign(target, json);
      if (target.payloadType !== "jwe") return json;
      // Check the key before signing: a target without one fails without using the signing key.
      const active = target.encryptionKey;
      const { key, alg } = encryptionKeyOf(target, active);
      const jwt = await sign(target, json);
      return new CompactEncrypt(encoder.encode(jwt))
        .setProtectedHeader({ alg, enc: "A256GCM", kid: active!.keyId, typ: "JWT", cty: "JWT" })
        .encrypt(key);
    },
  };
}
