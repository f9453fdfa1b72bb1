import type { CallerContext } from "../caller-context.js";

/**
 * defaultPayloadHeaders are the request headers copied into target payloads,
 * as in ZITADEL: Content-Type, Host, Origin, X-Forwarded-For, X-Forwarded-Host.
 */
export const defaultPayloadHeaders: readonly string[] = ["content-type", "host", "origin", "x-forwarded-for", "x-forwarded-host"];

/**
 * PayloadHeaders is the `headers` member of a payload: canonical header names
 * ("X-Forwarded-For") to lists of values.
 */
export type PayloadHeaders = Record<string, string[]>;

/**
 * pickPayloadHeaders returns the allowed headers of a request, with canonical
 * names. `host` falls back to the authority of `url` (HTTP/2 has no Host header).
 */
export function pickPayloadHeaders(header: Headers, url: string, allow: readonly string[] = defaultPayloadHeaders): PayloadHeaders {
  const out: PayloadHeaders = {};
  for (const name of allow) {
    let value = header.get(name);
    if (value === null && name === "host") {
      value = authorityOf(url);
    }
    if (value !== null) {
      out[canonicalNames.get(name) ?? canonicalHeaderName(name)] = [value];
    }
  }
  return out;
}

const canonicalNames = new Map(defaultPayloadHeaders.map((name) => [name, canonicalHeaderName(name)]));

function authorityOf(url: string): string | null {
  try {
    return new URL(url).host || null;
  } catch {
    return null;
  }
}

/**
 * canonicalHeaderName writes a header name as Go's http.Header does:
 * "x-forwarded-for" becomes "X-Forwarded-For".
 */
export function canonicalHeaderName(name: string): string {
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

/**
 * RequestPayload is the JSON a request or response target receives.
 */
export interface RequestPayload {
  readonly fullMethod: string;
  readonly context: CallerContext;
  /** The request message as protojson. */
  readonly request: unknown;
  /** The response message as protojson, response phase only. */
  readonly response?: unknown;
  readonly headers: PayloadHeaders;
}

/**
 * encodeRequestPayload returns the body ZITADEL sends to request and response
 * targets, keys in this order, empty values left out as Go's `omitempty`
 * does (empty IDs, no headers):
 * `{fullMethod, instanceID, orgID, projectID, userID, request, response, headers}`.
 */
export function encodeRequestPayload(p: RequestPayload): string {
  const body: Record<string, unknown> = { fullMethod: p.fullMethod };
  for (const key of ["instanceID", "orgID", "projectID", "userID"] as const) {
    const value = p.context[key];
    if (value !== undefined && value !== "") body[key] = value;
  }
  body.request = p.request;
  if (p.response !== undefined) body.response = p.response;
  if (Object.keys(p.headers).length > 0) body.headers = p.headers;
  return JSON.stringify(body);
}
