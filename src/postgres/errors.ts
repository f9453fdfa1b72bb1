import { Code, ConnectError } from "@connectrpc/connect";
import pg from "pg";

/**
 * PostgresErrorMapper turns what a query, a connection attempt or a
 * transaction threw into a ConnectError (see postgresErrorMapper).
 */
export type PostgresErrorMapper = (error: unknown) => ConnectError;

/**
 * postgresErrorMapper returns the PostgresErrorMapper of one component, whose
 * messages start with `component` (for example "postgres store"). There is no
 * default for either argument.
 *
 * A ConnectError is returned as it is. An error of PostgreSQL
 * (pg.DatabaseError) gets its code from its SQLSTATE: Code.Unavailable for the
 * classes 08 (connection exception), 53 (insufficient resources) and 57P
 * (the server shuts down or is shut down), Code.Aborted for 40001
 * (serialization failure) and 40P01 (deadlock), Code.DeadlineExceeded for
 * 57014 (statement timeout), Code.InvalidArgument where `invalidArgument`
 * returns true (values PostgreSQL cannot store; what they are differs between
 * components), and Code.Internal otherwise; its message is
 * "<component>: <message> (SQLSTATE <sqlState>)". Any other error becomes
 * Code.Unavailable when the database could not be reached (a system error code
 * starting with "E", such as ECONNREFUSED, or a message that mentions connect,
 * terminated, timeout or pool) and Code.Internal otherwise, with the message
 * "<component>: <message>". The original error is the ConnectError's cause.
 */
export function postgresErrorMapper(component: string, invalidArgument: (sqlState: string) => boolean): PostgresErrorMapper {
  return (error) => {
    if (error instanceof ConnectError) return error;
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof pg.DatabaseError) {
      const sqlState = error.code ?? "";
      return new ConnectError(
        `${component}: ${message} (SQLSTATE ${sqlState})`,
        sqlStateCode(sqlState, invalidArgument),
        undefined,
        undefined,
        error,
      );
    }
    const systemCode = (error as { code?: unknown } | null)?.code;
    const unreachable =
      (typeof systemCode === "string" && systemCode.startsWith("E")) || /connect|terminated|timeout|pool/i.test(message);
    return new ConnectError(`${component}: ${message}`, unreachable ? Code.Unavailable : Code.Internal, undefined, undefined, error);
  };
}

/** sqlStateCode returns the Code of a PostgreSQL error with `sqlState`, as described at postgresErrorMapper. */
function sqlStateCode(sqlState: string, invalidArgument: (sqlState: string) => boolean): Code {
  if (sqlState.startsWith("08") || sqlState.startsWith("53") || sqlState.startsWith("57P")) return Code.Unavailable;
  if (sqlState === "40001" || sqlState === "40P01") return Code.Aborted;
  if (sqlState === "57014") return Code.DeadlineExceeded;
  if (invalidArgument(sqlState)) return Code.InvalidArgument;
  return Code.Internal;
}
