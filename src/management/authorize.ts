import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { defaultProtectedServices } from "../actions-interceptor.js";
import { validateInstanceId } from "../store/action-store.js";

/**
 * ManagementRole is what a principal of the management API may manage:
 *
 * - "system": any instance, one per call: the instance the call addresses
 *   (for createStaticTokenAuthorizer, the one its resolveInstance finds, from
 *   the request's host). No call reads or changes two instances.
 * - "instance": its own instance only.
 */
export type ManagementRole = "system" | "instance";

/**
 * ManagementPrincipal is who calls the management API, as an authorizer
 * found it: the instance the call manages, and the role that allowed it.
 */
export interface ManagementPrincipal {
  /** The instance (tenant) whose targets and executions the call manages, "" for the default instance. */
  readonly instanceId: string;
  /** Why the principal may manage it. */
  readonly role: ManagementRole;
  /** Who it is, for logs and your own interceptors (for example a token's name), default none. */
  readonly subject?: string;
}

/**
 * ManagementRequest is what an authorizer sees of a management call. A
 * Connect UnaryRequest or StreamRequest is one; in a handler, see
 * managementRequestOf.
 */
export interface ManagementRequest {
  /** The request's URL, with the authority (host and port) it was sent to. */
  readonly url: string;
  /** The request's headers (Authorization, Host, ...). */
  readonly header: Headers;
  readonly service: DescService;
  readonly method: DescMethod;
  /** Values of the call; the principal is put under managementPrincipalKey. */
  readonly contextValues: ContextValues;
}

/**
 * ManagementAuthorizer decides who calls the management API and which
 * instance the call manages. It throws a ConnectError to refuse the call:
 * Code.Unauthenticated for missing or unknown credentials,
 * Code.PermissionDenied for credentials that may not manage the instance the
 * call addresses. Any other error fails the call with Code.Internal.
 */
export type ManagementAuthorizer = (req: ManagementRequest) => ManagementPrincipal | Promise<ManagementPrincipal>;

/**
 * managementPrincipalKey is the ContextValues key of a management call's
 * principal, undefined until an authorizer has run. The ActionService
 * manages the principal's instance; interceptors that run after the
 * authorization (RegisterManagementOptions.interceptors) may read it.
 */
export const managementPrincipalKey = createContextKey<ManagementPrincipal | undefined>(undefined, {
  description: "connect-actions management principal",
});

/**
 * managementRequestOf returns the ManagementRequest of a handler's call.
 */
export function managementRequestOf(ctx: HandlerContext): ManagementRequest {
  return { url: ctx.url, header: ctx.requestHeader, service: ctx.service, method: ctx.method, contextValues: ctx.values };
}

/**
 * authorizeCall runs `authorize` for a call, checks its answer, and puts
 * the principal under managementPrincipalKey. A ConnectError of the
 * authorizer fails the call as it is; any other failure, or an answer that
 * is no principal, fails it with Code.Internal (without the details).
 */
export async function authorizeCall(authorize: ManagementAuthorizer, req: ManagementRequest): Promise<ManagementPrincipal> {
  let principal: ManagementPrincipal;
  try {
    principal = await authorize(req);
  } catch (e) {
    if (e instanceof ConnectError) throw e;
    throw new ConnectError("management authorization failed", Code.Internal, undefined, undefined, e);
  }
  if (
    typeof principal !== "object" ||
    principal === null ||
    (principal.role !== "system" && principal.role !== "instance") ||
    typeof principal.instanceId !== "string"
  ) {
    throw new ConnectError("management authorization failed: the authorizer answered no principal", Code.Internal);
  }
  try {
    validateInstanceId(principal.instanceId);
  } catch (e) {
    throw new ConnectError(`management authorization failed: ${ConnectError.from(e).rawMessage}`, Code.Internal);
  }
  const frozen: ManagementPrincipal = Object.freeze({
    instanceId: principal.instanceId,
    role: principal.role,
    ...(principal.subject === undefined ? {} : { subject: principal.subject }),
  });
  req.contextValues.set(managementPrincipalKey, frozen);
  return frozen;
}

/**
 * ManagementAuthOptions configures createManagementAuthInterceptor.
 */
export interface ManagementAuthOptions {
  /** Decides who calls and which instance the call manages. */
  readonly authorize: ManagementAuthorizer;
  /**
   * Fully qualified names of the services that need authorization, default
   * defaultProtectedServices (the ActionService v2beta and v2). Calls to
   * other services pass through untouched.
   */
  readonly services?: readonly string[];
}

/**
 * createManagementAuthInterceptor returns a server-side Connect interceptor
 * that authorizes every call of the management API with `authorize` before
 * anything else runs, and puts the principal under managementPrincipalKey,
 * where the ActionService finds the instance the call manages. Put it first
 * (outermost) among the service's interceptors. Works for unary and
 * streaming calls over Connect, gRPC, gRPC-web and the REST gateway alike.
 */
export function createManagementAuthInterceptor(options: ManagementAuthOptions): Interceptor {
  const services = new Set(options.services ?? defaultProtectedServices);
  return (next) => async (req) => {
    if (!services.has(req.service.typeName)) return next(req);
    await authorizeCall(options.authorize, req);
    return next(req);
  };
}
