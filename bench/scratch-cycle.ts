import { silentLogger } from "../src/logger.js";
import { createPostgresEventQueue } from "../src/postgres/event-queue.js";
import { testJob } from "../src/testing/support.js";
const queue = await createPostgresEventQueue({ connectionString: "postgres://postgres@127.0.0.1:5432/evbench_scratch", schema: "cyc_q", logger: silentLogger });
await queue.pool.query("TRUNCATE cyc_q.event_jobs, cyc_q.event_lanes");
for (let i = 0; i < 20000; i += 1000) await queue.enqueue(Array.from({ length: 1000 }, (_, k) => testJob("t", `a${i + k}`, { instanceId: "i" })));
const t = async (name: string, f: () => Promise<unknown>, n = 200) => { const xs: number[] = []; for (let i = 0; i < n; i++) { const t0 = performance.now(); await f(); xs.push(performance.now() - t0); } xs.sort((a, b) => a - b); console.log(name, "p50", xs[n >> 1]!.toFixed(3), "p10", xs[Math.floor(n / 10)]!.toFixed(3)); };
let held = await queue.claim(16, 60000);
for (let r = 0; r < 2; r++) {
  await t("select 1", () => queue.pool.query("SELECT 1"));
  await t("cycle 16+16", async () => { const out = await queue.settleAndClaim(held.map((job) => ({ job, outcome: "complete" as const })), 16, 60000, { maxPerInstance: 12, instanceLimits: new Map([["i", 0]]) }); held = out.jobs.length ? out.jobs : await queue.claim(16, 60000); }, 100);
  await t("cycle 16+16 no caps", async () => { const out = await queue.settleAndClaim(held.map((job) => ({ job, outcome: "complete" as const })), 16, 60000, {}); held = out.jobs; }, 100);
  await t("claim 16 only", async () => { const j = await queue.claim(16, 60000); await queue.settle(j.map((job) => ({ job, outcome: "complete" as const })), { wait: false }); }, 100);
}
await queue.close();
