import { Code, ConnectError } from "@connectrpc/connect";
import { defaultInstanceId, validateInstanceId } from "../store/action-store.js";
import type { ManagementAuthorizer, ManagementPrincipal, ManagementRequest, ManagementRole } from "./authorize.js";
import { bearerTokenOf, tokenDigest } from "./bearer-auth.js";

/**
 * StaticTokenAuthorizerOptions configures createStaticTokenAuthorizer. Give
 * at least one token.
 */
export interface StaticTokenAuthorizerOptions {
  /**
   * Tokens that may manage any instance (role "system"): each call manages
   * the instance it addresses (resolveInstance). Several allow rotation.
   * Default none.
   */
  readonly systemTokens?: string | readonly string[];
  /**
   * Tokens of one instance each (role "instance"): instance ID -> its token,
   * or several (rotation). Such a token manages its instance only, and only
   * in calls that address it. Default none.
   */
  readonly instanceTokens?: Readonly<Record<string, string | readonly string[]>> | ReadonlyMap<string, string | readonly string[]>;
  /**
   * The instance a call addresses, for example createHostInstanceResolver(...)
   * (the request's host, as ZITADEL ties the instance to its domain). Default
   * "" (defaultInstanceId) for every call; required with instanceTokens.
   */
  readonly resolveInstance?: (req: ManagementRequest) => string | Promise<string>;
}

/**
 * createStaticTokenAuthorizer returns a ManagementAuthorizer for tokens
 * known in advance, presented as `Authorization: Bearer <token>`:
 *
 * - a system token manages the instance the call addresses (resolveInstance);
 * - an instance token manages its own instance, and is refused with
 *   Code.PermissionDenied in a call that addresses another one (for example
 *   on another instance's host);
 * - a missing, malformed or unknown token is Code.Unauthenticated.
 *
 * Tokens are compared by their SHA-256 digests, so the time a lookup takes
 * does not depend on how much of a token matches, nor on how many tokens
 * there are. Throws a ConnectError with Code.InvalidArgument for options
 * without a token, with an empty token, a token given twice, an invalid
 * instance ID, or instanceTokens without resolveInstance.
 */
export function createStaticTokenAuthorizer(options: StaticTokenAuthorizerOptions): ManagementAuthorizer {
  const principals = new Map<string, { readonly role: ManagementRole; readonly instanceId: string | undefined }>();
  const add = (token: unknown, role: ManagementRole, instanceId: string | undefined, field: string) => {
    if (typeof token !== "string" || token.trim() === "") {
      throw new ConnectError(`${field}: tokens must be non-empty strings`, Code.InvalidArgument);
    }
    const key = tokenDigest(token.trim()).toString("hex");
    if (principals.has(key)) {
      throw new ConnectError(`${field}: a token is given twice; every token must belong to one principal`, Code.InvalidArgument);
    }
    principals.set(key, { role, instanceId });
  };
  const list = (value: string | readonly string[]) => (typeof value === "string" ? [value] : value);
  for (const token of list(options.systemTokens ?? [])) add(token, "system", undefined, "systemTokens");
  const instanceTokens = options.instanceTokens ?? {};
  const entries = instanceTokens instanceof Map ? [...instanceTokens] : Object.entries(instanceTokens);
  for (const [instanceId, tokens] of entries) {
    validateInstanceId(instanceId);
    for (const token of list(tokens)) add(token, "instance", instanceId, `instanceTokens["${instanceId}"]`);
  }
  if (principals.size === 0) {
    throw new ConnectError("createStaticTokenAuthorizer needs at least one system or instance token", Code.InvalidArgument);
  }
  if (entries.length > 0 && options.resolveInstance === undefined) {
    throw new ConnectError("instanceTokens need resolveInstance: the instance a call addresses", Code.InvalidArgument);
  }
  const resolveInstance = options.resolveInstance ?? (() => defaultInstanceId);

  return async (req): Promise<ManagementPrincipal> => {
    const found = principals.get(tokenDigest(bearerTokenOf(req.header)).toString("hex"));
    if (found === undefined) {
      throw new ConnectError("invalid bearer token", Code.Unauthenticated);
    }
    const addressed = validateInstanceId(await resolveInstance(req));
    if (found.role === "system") {
      return { instanceId: addressed, role: "system" };
    }
    if (found.instanceId !== addressed) {
      throw new ConnectError(
        `this token manages instance "${found.instanceId}" only, and the call addresses instance "${addressed}"`,
        Code.PermissionDenied,
      );
    }
    return { instanceId: addressed, role: "instance" };
  };
}
