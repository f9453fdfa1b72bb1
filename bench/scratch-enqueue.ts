import pg from "pg";
import { silentLogger } from "../src/logger.js";
import { createPostgresEventQueue } from "../src/postgres/event-queue.js";
import { testJob } from "../src/testing/support.js";
const url = "postgres://postgres@127.0.0.1:5432/evbench_scratch";
const queue = await createPostgresEventQueue({ connectionString: url, schema: "scratch_q", logger: silentLogger });
const client = new pg.Client({ connectionString: url });
await client.connect();
await client.query("CREATE TABLE IF NOT EXISTS bu (id bigint generated always as identity primary key, n text)");
const time = async (name: string, f: () => Promise<void>, n = 500) => {
  for (let i = 0; i < 50; i++) await f();
  const xs: number[] = [];
  for (let i = 0; i < n; i++) { const t = performance.now(); await f(); xs.push(performance.now() - t); }
  xs.sort((a, b) => a - b);
  console.log(name, xs[n >> 1]!.toFixed(3), "ms p50");
};
for (let r = 0; r < 2; r++) {
await time("insert tx", async () => { await client.query("BEGIN"); await client.query("INSERT INTO bu (n) VALUES ('x') RETURNING id"); await client.query("COMMIT"); });
await time("insert+enqueue tx", async () => { await client.query("BEGIN"); await client.query("INSERT INTO bu (n) VALUES ('x') RETURNING id"); await queue.enqueueWith(client, [testJob("t", "k" + Math.random())]); await client.query("COMMIT"); });
await time("insert+select1 tx", async () => { await client.query("BEGIN"); await client.query("INSERT INTO bu (n) VALUES ('x') RETURNING id"); await client.query("SELECT 1"); await client.query("COMMIT"); });
await time("enqueue autocommit", async () => { await queue.enqueue([testJob("t", "k" + Math.random())]); });
}
await client.query("TRUNCATE scratch_q.event_jobs, scratch_q.event_lanes");
await client.end(); await queue.close();
