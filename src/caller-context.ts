import { createContextKey, type UnaryRequest } from "@connectrpc/connect";

/**
 * CallerContext is who calls: the IDs that go into every target payload.
 * Empty or missing IDs are left out of the payload.
 */
export interface CallerContext {
  readonly instanceID?: string;
  readonly orgID?: string;
  readonly projectID?: string;
  readonly userID?: string;
}

/**
 * ResolveContext returns the CallerContext of a request, for example from its
 * verified token. It runs only for requests that have a matching execution.
 * A ConnectError it throws fails the RPC with that error.
 */
export type ResolveContext = (req: UnaryRequest) => CallerContext | Promise<CallerContext>;

/**
 * ResolveInstance returns the instance (tenant) of a request: an instance ID,
 * "" for the default one. A ConnectError it throws fails the RPC with that
 * error.
 */
export type ResolveInstance = (req: UnaryRequest) => string | Promise<string>;

/**
 * callerContextKey is the ContextValues key under which an application can
 * put a request's CallerContext (for example in an authentication
 * interceptor that runs before the actions interceptor). The default
 * ResolveContext reads it.
 */
export const callerContextKey = createContextKey<CallerContext>({}, { description: "connect-actions caller context" });

/**
 * contextFromValues is the default ResolveContext: the CallerContext stored
 * under callerContextKey, or an empty one.
 */
export const contextFromValues: ResolveContext = (req) => req.contextValues.get(callerContextKey);
