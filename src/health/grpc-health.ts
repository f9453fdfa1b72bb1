import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  type Health as HealthService,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  HealthListResponseSchema,
} from "../../gen/grpc/health/v1/health_pb.js";
import type { Health } from "./health.js";

/**
 * GrpcHealthServiceOptions configures createGrpcHealthService.
 */
export interface GrpcHealthServiceOptions {
  /**
   * The service names Check, List and Watch know besides "" (the server as
   * a whole), for example the fully-qualified names of the services the
   * server serves. Each is SERVING exactly when the server is ready. Default
   * none.
   */
  readonly services?: readonly string[];
}

/**
 * createGrpcHealthService returns gRPC's standard health service
 * (grpc.health.v1.Health) for a Health: Check answers SERVING while
 * health.ready(), else NOT_SERVING, and Code.NotFound for a service it does
 * not know; List answers every known service; Watch sends the status at once
 * and at every change until the call is cancelled or the health closed
 * (SERVICE_UNKNOWN for an unknown service, and the call goes on). Register it
 * without the actions interceptor (it is one of defaultProtectedServices, so
 * the interceptor would skip it anyway):
 *
 * ```ts
 * router.service(HealthService, createGrpcHealthService(health), { interceptors: [] });
 * ```
 */
export function createGrpcHealthService(health: Health, options: GrpcHealthServiceOptions = {}): ServiceImpl<typeof HealthService> {
  const known = new Set(["", ...(options.services ?? [])]);
  const statusOf = (service: string) =>
    !known.has(service) ? ServingStatus.SERVICE_UNKNOWN : health.ready() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  return {
    check(req) {
      if (!known.has(req.service)) throw new ConnectError(`unknown service "${req.service}"`, Code.NotFound);
      return create(HealthCheckResponseSchema, { status: statusOf(req.service) });
    },
    list() {
      if (known.size > 100) throw new ConnectError("more than 100 services", Code.ResourceExhausted);
      return create(HealthListResponseSchema, {
        statuses: Object.fromEntries([...known].map((s) => [s, create(HealthCheckResponseSchema, { status: statusOf(s) })])),
      });
    },
    async *watch(req, ctx) {
      let wake: (() => void) | undefined;
      let changed = false;
      const stop = health.watch(() => {
        changed = true;
        wake?.();
      });
      const onAbort = () => wake?.();
      ctx.signal.addEventListener("abort", onAbort);
      try {
        let last: ServingStatus | undefined;
        for (;;) {
          const status = statusOf(req.service);
          if (status !== last) {
            last = status;
            yield create(HealthCheckResponseSchema, { status });
          }
          if (ctx.signal.aborted || !health.live()) return;
          if (!changed) await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          changed = false;
          if (ctx.signal.aborted || !health.live()) return;
        }
      } finally {
        stop();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  };
}
