// Keys of JWT and JWE payloads: the instances' signing keys, their JWKS handler, and the helpers of target authors.
export { createJwksHandler, type JwksHandlerOptions, jwksPath, type JwksRequest, type JwksResponse } from "./jwks-handler.js";
export {
  decryptJwePayload,
  type DecryptPayloadOptions,
  type JwksInput,
  type PrivateKeyInput,
  type VerifyPayloadOptions,
  verifyJwtPayload,
} from "./payload-verify.js";
export {
  createMemorySigningKeySource,
  defaultPublishAheadMs,
  defaultPublishedLifetimeMs,
  defaultSigningLifetimeMs,
  type JsonWebKeySet,
  type MemorySigningKeySourceOptions,
  type PublicJwk,
  type SigningAlgorithm,
  type SigningKey,
  type SigningKeyLifetimes,
  type SigningKeySource,
} from "./signing-key-source.js";
