// HTTP requests of the benches to the servers they start.
import type { Pool } from "undici";

/** post sends a JSON body to `path` and resolves the answer's text; it throws for a status other than 200. */
export async function post(pool: Pool, path: string, body: string): Promise<string> {
  const res = await pool.request({ path, method: "POST", headers: { "content-type": "application/json" }, body });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`${path}: status ${res.statusCode}: ${text}`);
  return text;
}
