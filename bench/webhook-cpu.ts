// `node --import tsx bench/webhook-cpu.ts`: server CPU per request of configurations of
// bench/sample-server.ts, measured with the server's own process.cpuUsage() (µs, asked over IPC
// before and after each measured batch), so that the figure does not depend on the wall clock or on
// /proc's 10 ms ticks. The configurations run in one server process and are measured in
// interleaved rounds (order flipped every round), sequentially (one connection) and with
// --connections connections; medians and the per-round ratios to the first configuration are
// printed.
//
// Options: --modes <list> (default rawcall,webhook-bare,webhook,call) --requests <n> per batch
// (default 3000) --rounds <n> (default 7) --connections <n> (default 16)
// SERVER_NODE_OPTIONS: extra node flags for the server process (for example "--cpu-prof
// --cpu-prof-dir=.tmp/prof"); the server is stopped with SIGTERM, so profiles are written.
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { Pool } from "undici";
import { startBenchChild } from "./bench-child.js";
import { post } from "./bench-http.js";
import { median } from "./bench-stats.js";

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1]! : fallback;
};
const modes = option("modes", "rawcall,webhook-bare,webhook,call").split(",");
const requests = Number(option("requests", "3000"));
const rounds = Number(option("rounds", "7"));
const connections = Number(option("connections", "16"));

/** cpuOf asks the server for its process.cpuUsage(), in µs (user + system). */
async function cpuOf(child: ChildProcess): Promise<number> {
  const answer = once(child, "message");
  child.send("cpu");
  const [usage] = (await answer) as [NodeJS.CpuUsage];
  return usage.user + usage.system;
}


const target = await startBenchChild("target-server.ts");
const serverFlags = (process.env.SERVER_NODE_OPTIONS ?? "").split(" ").filter((f) => f !== "");
const server = await startBenchChild("sample-server.ts", [modes.join(","), `http://127.0.0.1:${target.ports[0]}`], { ipc: true, nodeFlags: serverFlags });
const clients = new Map<string, { pool: Pool; body: string }>();
for (const [i, mode] of modes.entries()) {
  const pool = new Pool(`http://127.0.0.1:${server.ports[i]}`, { connections, pipelining: 1 });
  const added = JSON.parse(
    await post(pool, "/zitadel.user.v2.UserService/AddHumanUser", JSON.stringify({ profile: { givenName: "Bench", familyName: "User" }, email: { email: "bench@example.com" } })),
  ) as { userId: string };
  clients.set(mode, { pool, body: JSON.stringify({ userId: added.userId }) });
}

/** Sends `count` requests over `conns` closed loops; returns the server's CPU µs per request. */
async function batch(mode: string, count: number, conns: number): Promise<number> {
  const { pool, body } = clients.get(mode)!;
  let left = count;
  const before = await cpuOf(server.child);
  await Promise.all(
    Array.from({ length: conns }, async () => {
      while (left-- > 0) await post(pool, "/zitadel.user.v2.UserService/GetUserByID", body);
    }),
  );
  return ((await cpuOf(server.child)) - before) / count;
}

for (const mode of modes) {
  await batch(mode, requests, connections); // warm-up
  await batch(mode, requests, 1);
}
const results = new Map(modes.map((m) => [m, { seq: [] as number[], par: [] as number[] }]));
for (let round = 0; round < rounds; round++) {
  for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
    results.get(mode)!.seq.push(await batch(mode, requests, 1));
    results.get(mode)!.par.push(await batch(mode, requests, connections));
  }
  process.stderr.write(`round ${round + 1}/${rounds}\n`);
}
const base = modes[0]!;
const ratio = (mode: string, phase: "seq" | "par") => {
  const xs = results.get(mode)![phase].map((v, r) => v / results.get(base)![phase][r]!);
  return `${median(xs).toFixed(3)} [${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)}]`;
};
console.log(`server CPU µs/request, ${requests} requests per batch, medians of ${rounds} interleaved rounds; ratios to ${base} per round`);
console.log(["mode", "seq µs", `c=${connections} µs`, `seq /${base}`, `c=${connections} /${base}`].join("\t"));
for (const mode of modes) {
  const r = results.get(mode)!;
  console.log([mode, median(r.seq).toFixed(1), median(r.par).toFixed(1), ratio(mode, "seq"), ratio(mode, "par")].join("\t"));
}
for (const { pool } of clients.values()) await pool.close();
server.child.kill("SIGTERM");
target.child.kill("SIGTERM");
await once(server.child, "exit");
