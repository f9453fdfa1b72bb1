// Client CPU per transaction of a write with and without its event, as the events bench's write
// cost runs it (node-postgres, BEGIN, an insert, COMMIT; the outbox's enqueueAndCommit), read from
// this process's own cpuUsage over interleaved 3 s rounds: what the client on the same machine
// takes from the database's CPU. It creates and drops a throwaway database next to DATABASE_URL's
// (default postgres://postgres@127.0.0.1:5432/postgres).
//   node --import tsx bench/write-cost-client.ts        (CONNS=<n> connections, default 16; ONLY=<mode>)
import pg from "pg";
import { createPostgresStore, createPostgresEventQueue } from "../src/postgres/index.js";
import { createExecutionPlanner } from "../src/plan/index.js";
import { createEventPublisher } from "../src/events/index.js";
import { silentLogger } from "../src/logger.js";
import type { ActionEvent } from "../src/events/index.js";
import { createBenchDatabase } from "./bench-database.js";
import { benchUserEvent } from "./bench-event.js";
import { median } from "./bench-stats.js";

const db = await createBenchDatabase(process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres");
const url = db.url;

const pool = new pg.Pool({ connectionString: url, max: 20 });
pool.on("error", () => undefined); // the drop at the end ends what is still connected
await pool.query(`CREATE TABLE bench_users (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, given_name text NOT NULL, family_name text NOT NULL,
  email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
const store = await createPostgresStore({ connectionString: url, logger: silentLogger });
const benchStore = store.forInstance("bench-instance");
const target = await benchStore.createTarget({ name: "events", type: "webhook", endpoint: "http://127.0.0.1:9/events", timeoutMs: 5000 });
await benchStore.setExecution({ type: "event", event: "user.human.added" }, [{ target: target.id }]);
const planner = createExecutionPlanner(store);
// A schema no worker reads, emptied between rounds, as the events bench's write cost.
const queue = await createPostgresEventQueue({ connectionString: url, schema: "bench_writes", logger: silentLogger });
const publisher = createEventPublisher({ planner, queue });

let users = 0;
const userEvent = (id: string): ActionEvent => benchUserEvent(id, ++users);
const insertUser = async (client: pg.PoolClient): Promise<string> => {
  const { rows } = await client.query<{ id: string }>(
    "INSERT INTO bench_users (given_name, family_name, email) VALUES ($1, $2, $3) RETURNING id",
    ["Bench", "User", "bench@example.com"],
  );
  return String(rows[0]!.id);
};

/** The transactions compared: the write alone, with its event as the outbox writes it, and with the jobs made but not sent. */
const modes: Record<string, (client: pg.PoolClient) => Promise<void>> = {
  alone: async (client) => {
    await client.query("BEGIN");
    await insertUser(client);
    await client.query("COMMIT");
  },
  outbox: async (client) => {
    await client.query("BEGIN");
    const jobs = await publisher.jobsFor(userEvent(await insertUser(client)));
    await queue.enqueueAndCommit(client, jobs);
  },
  jobsOnly: async (client) => {
    await client.query("BEGIN");
    await publisher.jobsFor(userEvent(await insertUser(client)));
    await client.query("COMMIT");
  },
};

const connections = Number(process.env.CONNS ?? 16);
/** run loops `connections` clients over one mode for `ms`; resolves tx/s and this process's CPU µs per transaction. */
async function run(mode: string, ms: number): Promise<{ tps: number; cpuPerTx: number }> {
  const until = performance.now() + ms;
  let count = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      const client = await pool.connect();
      try {
        while (performance.now() < until) {
          await modes[mode]!(client);
          count++;
        }
      } finally {
        client.release();
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { tps: (count * 1000) / (performance.now() - t0), cpuPerTx: (cpu.user + cpu.system) / count };
}

const names = Object.keys(modes).filter((m) => process.env.ONLY === undefined || m === process.env.ONLY);
for (const m of names) await run(m, 1000); // warm-up
const results = new Map<string, { tps: number[]; cpu: number[] }>();
for (let round = 0; round < 4; round++) {
  for (const m of round % 2 === 0 ? names : [...names].reverse()) {
    const r = await run(m, 3000);
    const kept = results.get(m) ?? { tps: [], cpu: [] };
    kept.tps.push(r.tps);
    kept.cpu.push(r.cpuPerTx);
    results.set(m, kept);
    await pool.query("TRUNCATE bench_users");
    await pool.query("DELETE FROM bench_writes.event_inbox");
  }
}
console.log(`connections ${connections}, medians of 4 rounds of 3 s`);
for (const [m, v] of results) console.log(m.padEnd(10), "tx/s", median(v.tps).toFixed(0).padStart(6), "  client CPU µs/tx", median(v.cpu).toFixed(1));
await queue.close();
planner.close();
await store.close();
await pool.end();
await db.drop();
