// How targets are called: the HTTP dispatcher, payloads, signatures and the SSRF guard.
export { defaultMaxHops, hopHeader, hopsOf } from "./hop.js";
export { createEndpointGuard, type EndpointGuard, type EndpointGuardOptions } from "./endpoint-guard.js";
export {
  createExcerpter,
  defaultExcerptBytes,
  type ExcerptOptions,
  type Excerpter,
  maxExcerptBytes,
  minExcerptBytes,
  redacted,
  truncateUtf8,
  truncationMark,
} from "./excerpt.js";
export {
  canonicalHeaderName,
  defaultPayloadHeaders,
  encodeRequestPayload,
  type PayloadHeaders,
  pickPayloadHeaders,
  type RequestPayload,
} from "./payload.js";
export { signatureHeader, signPayload, type SignOptions, verifySignature, type VerifyOptions } from "./signature.js";
export {
  codeFromHttpStatus,
  createTargetDispatcher,
  errorDetail,
  executionFailed,
  type TargetCall,
  type TargetCallRecord,
  type TargetDispatcher,
  type TargetDispatcherOptions,
  TargetFailure,
  type TargetResponse,
  targetStatusOf,
} from "./target-dispatcher.js";
