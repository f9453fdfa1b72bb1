// Bulk data for the scale bench: targets and executions written with SQL (generate_series) into a
// store's schema, row for row as the store writes them, in seconds instead of the hours 100 000
// management calls would take. Execution references (migration 5) are filled in one statement
// with the trigger off, when the schema has them.
import pg from "pg";

/**
 * Shape of the executions of one seeded instance: execution i is on the request (even i) or
 * response (odd i) of "/bench.v1.Service<i % services>/Method<i>" and names target i % targets;
 * every execution with i % 4 in {2, 3} also includes execution i - 2 (same type, no includes of
 * its own), so that a quarter of them resolve through an include.
 */
export interface SeedShape {
  readonly targets: number;
  readonly executions: number;
  readonly services: number;
}

/**
 * seedInstances writes the targets and executions of `instances` instances named
 * `${prefix}${k}` (or exactly `prefix` when instances is 1 and `exact` is set) into `schema`.
 */
export async function seedInstances(
  pool: pg.Pool,
  schema: string,
  prefix: string,
  instances: number,
  shape: SeedShape,
  exact = false,
): Promise<void> {
  const q = pg.escapeIdentifier(schema);
  const instanceExpr = exact ? "$1::text" : "$1 || k";
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    const refs = (await client.query(`SELECT to_regclass($1) AS t`, [`${schema}.execution_refs`])).rows[0]?.t !== null;
    if (refs) await client.query(`ALTER TABLE ${q}.executions DISABLE TRIGGER executions_refs_sync`);
    await client.query(
      `INSERT INTO ${q}.targets (id, instance_id, name, type, interrupt_on_error, endpoint, timeout_ms, signing_key, creation_date, change_date)
       SELECT 'bt-' || md5(${instanceExpr}) || '-' || i, ${instanceExpr}, 'bench-' || i, 'webhook', false,
              'http://127.0.0.1:9/hook', 5000, repeat('k', 36), now(), now()
       FROM generate_series(0, $2 - 1) AS k, generate_series(0, $3 - 1) AS i`,
      [prefix, instances, shape.targets],
    );
    await client.query(
      `INSERT INTO ${q}.executions (instance_id, id, condition, targets, creation_date, change_date)
       SELECT ${instanceExpr}, x.type || x.method,
              jsonb_build_object('type', x.type, 'method', x.method),
              CASE WHEN i % 4 >= 2
                THEN jsonb_build_array(jsonb_build_object('target', 'bt-' || md5(${instanceExpr}) || '-' || (i % $3)),
                                       jsonb_build_object('include', x.type || '/bench.v1.Service' || ((i - 2) % $5) || '/Method' || (i - 2)))
                ELSE jsonb_build_array(jsonb_build_object('target', 'bt-' || md5(${instanceExpr}) || '-' || (i % $3)))
              END,
              now(), now()
       FROM generate_series(0, $2 - 1) AS k, generate_series(0, $4 - 1) AS i,
            LATERAL (SELECT CASE WHEN i % 2 = 0 THEN 'request' ELSE 'response' END AS type,
                            '/bench.v1.Service' || (i % $5) || '/Method' || i AS method) AS x`,
      [prefix, instances, shape.targets, shape.executions, shape.services],
    );
    if (refs) {
      await client.query(
        `INSERT INTO ${q}.execution_refs (instance_id, execution_id, kind, ref_id)
         SELECT x.instance_id, x.id, CASE WHEN e ? 'target' THEN 'target' ELSE 'include' END, COALESCE(e ->> 'target', e ->> 'include')
         FROM ${q}.executions AS x, jsonb_array_elements(x.targets) AS e
         WHERE ${exact ? "x.instance_id = $1" : "starts_with(x.instance_id, $1)"}
         ON CONFLICT DO NOTHING`,
        [prefix],
      );
      await client.query(`ALTER TABLE ${q}.executions ENABLE TRIGGER executions_refs_sync`);
    }
    await client.query("COMMIT");
    await client.query(`ANALYZE ${q}.targets`);
    await client.query(`ANALYZE ${q}.executions`);
    if (refs) await client.query(`ANALYZE ${q}.execution_refs`);
  } catch (error) {
    await client.query("ROLLBACK").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
