import { createHash, timingSafeEqual } from "node:crypto";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { defaultProtectedServices } from "../actions-interceptor.js";

/**
 * BearerAuthOptions configures createBearerAuthInterceptor.
 */
export interface BearerAuthOptions {
  /** The accepted tokens (several allow rotation); at least one, none empty. */
  readonly tokens: string | readonly string[];
  /**
   * Fully qualified names of the services that need a token, default
   * defaultProtectedServices (the ActionService v2beta and v2). Calls to other
   * services pass through untouched.
   */
  readonly services?: readonly string[];
}

const bearerPattern = /^Bearer[ \t]+([^ \t].*?)[ \t]*$/i;

/** tokenDigest returns the SHA-256 of a token, what tokens are compared by. */
export function tokenDigest(token: string): Buffer {
  return createHash("sha256").update(token, "utf8").digest();
}

/**
 * createBearerAuthInterceptor returns a server-side Connect interceptor that
 * lets calls to the protected services through only with an
 * `Authorization: Bearer <token>` header carrying one of the accepted tokens
 * (compared in constant time). A missing or malformed header, or an unknown
 * token, fails the call with Code.Unauthenticated before anything else runs,
 * so put it first (outermost) in the interceptor list, before the actions
 * interceptor. Works for unary and streaming calls over Connect, gRPC,
 * gRPC-web and the REST gateway alike.
 *
 * Throws a ConnectError with Code.InvalidArgument when no token or an empty
 * one is given.
 */
export function createBearerAuthInterceptor(options: BearerAuthOptions): Interceptor {
  const tokens = typeof options.tokens === "string" ? [options.tokens] : [...options.tokens];
  if (tokens.length === 0 || tokens.some((t) => typeof t !== "string" || t.trim() === "")) {
    throw new ConnectError("createBearerAuthInterceptor needs at least one non-empty token", Code.InvalidArgument);
  }
  const accepted = tokens.map((t) => tokenDigest(t.trim()));
  const services = new Set(options.services ?? defaultProtectedServices);
  const isAccepted = (token: string): boolean => {
    const presented = tokenDigest(token);
    let ok = false;
    for (const candidate of accepted) {
      // No early exit: every call compares against every token.
      ok = timingSafeEqual(presented, candidate) || ok;
    }
    return ok;
  };
  return (next) => async (req) => {
    if (!services.has(req.service.typeName)) {
      return next(req);
    }
    if (!isAccepted(bearerTokenOf(req.header))) {
      throw new ConnectError("invalid bearer token", Code.Unauthenticated);
    }
    return next(req);
  };
}

/**
 * bearerTokenOf returns the token of a request's `Authorization: Bearer
 * <token>` header (the scheme case-insensitive, the token without
 * surrounding blanks). Throws a ConnectError with Code.Unauthenticated when
 * the header is missing, empty or of another scheme.
 */
export function bearerTokenOf(header: Headers): string {
  const value = header.get("authorization");
  if (value === null || value.trim() === "") {
    throw new ConnectError('missing "Authorization: Bearer <token>" header', Code.Unauthenticated);
  }
  const match = bearerPattern.exec(value);
  if (match === null) {
    throw new ConnectError('malformed Authorization header, expected "Bearer <token>"', Code.Unauthenticated);
  }
  return match[1]!;
}
