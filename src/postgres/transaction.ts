import pg from "pg";

/**
 * TransactionOptions configures inTransaction. Every field is optional.
 */
export interface TransactionOptions<T> {
  /** Statement that opens the transaction. Default "BEGIN". */
  readonly begin?: string;
  /**
   * end tells how a transaction whose function resolved `value` ends:
   * "COMMIT" or "ROLLBACK". Default: always "COMMIT".
   */
  readonly end?: (value: T) => "COMMIT" | "ROLLBACK";
  /**
   * commit ends a transaction whose function resolved `value`, instead of
   * the statement `end` names: it must commit the transaction on `client`
   * itself, for example together with a last statement in one round trip.
   * When it throws, the transaction is rolled back. Default none.
   */
  readonly commit?: (client: pg.ClientBase, value: T) => Promise<void>;
  /**
   * mapError turns the error the transaction rejects with into another one,
   * for example a ConnectError (see postgresErrorMapper). It also maps the
   * errors of taking a client from a pool. Default: errors are passed on as
   * they were thrown.
   */
  readonly mapError?: (error: unknown) => unknown;
}

/**
 * inTransaction runs `fn` in a transaction and resolves what it resolved.
 * `target` is a pool, from which a client is taken for the duration and then
 * released, or a connected client that is not inside a transaction, which is
 * neither released nor ended. The transaction opens with `options.begin`
 * (default "BEGIN") and ends as `options.end` says (default COMMIT) once `fn`
 * resolves; when anything throws, it is rolled back and the error, passed
 * through `options.mapError` (default: unchanged), is rethrown. A pooled
 * client whose ROLLBACK failed, or whose connection failed while it was
 * checked out (it listens for that meanwhile), is released as broken, so that
 * the pool drops it.
 */
export async function inTransaction<T>(
  target: pg.Pool | pg.ClientBase,
  fn: (client: pg.ClientBase) => Promise<T>,
  options: TransactionOptions<T> = {},
): Promise<T> {
  const mapError = options.mapError ?? ((error: unknown) => error);
  const pooled = target instanceof pg.Pool;
  let client: pg.ClientBase;
  try {
    client = pooled ? await target.connect() : target;
  } catch (error) {
    throw mapError(error);
  }
  let broken = false;
  // A pooled client has no error listener while it is checked out: a
  // connection that dies meanwhile (a terminated backend) would crash the
  // process. The query in flight fails with the error anyway.
  const onError = () => {
    broken = true;
  };
  if (pooled) client.on("error", onError);
  try {
    await client.query(options.begin ?? "BEGIN");
    const value = await fn(client);
    if (options.commit !== undefined) await options.commit(client, value);
    else await client.query(options.end?.(value) ?? "COMMIT");
    return value;
  } catch (error) {
    try {
      await client.query("ROLLBACK");
    } catch {
      broken = true; // the connection is unusable: let the pool drop it
    }
    throw mapError(error);
  } finally {
    if (pooled) {
      client.removeListener("error", onError);
      (client as pg.PoolClient).release(broken);
    }
  }
}
