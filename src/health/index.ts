// Health for orchestrators: liveness and readiness, over HTTP probes and gRPC's health service.
export { Health as HealthService } from "../../gen/grpc/health/v1/health_pb.js";
export { createGrpcHealthService, type GrpcHealthServiceOptions } from "./grpc-health.js";
export { type CheckStatus, createHealth, type Health, type HealthCheck, type HealthOptions, type HealthStatus } from "./health.js";
export { createHealthHandler, type HealthHandler, type HealthHandlerOptions } from "./health-handler.js";
