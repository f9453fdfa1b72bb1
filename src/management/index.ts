// "connect-actions/management": the ActionService (zitadel.action.v2beta and v2), its authorization (per instance),
// the REST gateway of its google.api.http paths, and the generated service descriptors to mount it.
export { ActionService as ActionServiceV2 } from "../../gen/zitadel/action/v2/action_service_pb.js";
export { ActionService as ActionServiceV2beta } from "../../gen/zitadel/action/v2beta/action_service_pb.js";
export { type ActionServiceImpl, type ActionServiceOptions, createActionService } from "./action-service.js";
export {
  convertLegacyExecutionTargets,
  createSetExecutionCompatAdapter,
  type LegacyExecutionTargetsConversion,
  type SetExecutionCompatOptions,
} from "./action-service-compat.js";
export {
  authorizeCall,
  createManagementAuthInterceptor,
  type ManagementAuthOptions,
  type ManagementAuthorizer,
  type ManagementPrincipal,
  managementPrincipalKey,
  type ManagementRequest,
  managementRequestOf,
  type ManagementRole,
} from "./authorize.js";
export { type BearerAuthOptions, bearerTokenOf, createBearerAuthInterceptor } from "./bearer-auth.js";
export { createStaticTokenAuthorizer, type StaticTokenAuthorizerOptions } from "./static-token-authorizer.js";
export {
  createNodeRouterHandler,
  type NodeHandlerFn,
  type NodeRouterHandler,
  type NodeRouterHandlerOptions,
  type NodeServerRequest,
  type NodeServerResponse,
} from "./node-router-handler.js";
export {
  createRestGateway,
  type RestGateway,
  type RestGatewayOptions,
  type RestRequestAdapter,
  type RestRoute,
  restErrorResponse,
  restStatusFromCode,
} from "./rest-gateway.js";
