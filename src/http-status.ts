import { Code } from "@connectrpc/connect";

/**
 * restStatusFromCode returns the HTTP status a REST gateway answers for an
 * error code, as grpc-gateway does: InvalidArgument, FailedPrecondition and
 * OutOfRange 400, Unauthenticated 401, PermissionDenied 403, NotFound 404,
 * AlreadyExists and Aborted 409, ResourceExhausted 429, Canceled 499,
 * Unimplemented 501, Unavailable 503, DeadlineExceeded 504, others 500.
 */
export function restStatusFromCode(code: Code): number {
  switch (code) {
    case Code.InvalidArgument:
    case Code.FailedPrecondition:
    case Code.OutOfRange:
      return 400;
    case Code.Unauthenticated:
      return 401;
    case Code.PermissionDenied:
      return 403;
    case Code.NotFound:
      return 404;
    case Code.AlreadyExists:
    case Code.Aborted:
      return 409;
    case Code.ResourceExhausted:
      return 429;
    case Code.Canceled:
      return 499;
    case Code.Unimplemented:
      return 501;
    case Code.Unavailable:
      return 503;
    case Code.DeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}
