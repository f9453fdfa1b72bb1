// Two real replica processes share one database: one is killed with SIGKILL
// while it delivers, and the other delivers every event anyway.
import { type ChildProcess, spawn } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { ActionEvent } from "../src/events/action-event.js";
import type { DeliveryPage } from "../src/store/delivery-log.js";
import { silentLogger } from "../src/logger.js";
import { createPostgresStore } from "../src/postgres/store.js";
import { useTestDatabase } from "./helpers/postgres.js";
import { sleep } from "./helpers/wait.js";

const fixture = fileURLToPath(new URL("./fixtures/replica.ts", import.meta.url));
const root = fileURLToPath(new URL("..", import.meta.url));

/** How long the target takes to answer each delivery. */
const deliveryMs = 300;
const aggregates = 8;
const rounds = 14;
const killBeforeRound = 6;

interface Replica {
  readonly name: string;
  readonly process: ChildProcess;
  readonly url: string;
  readonly output: string[];
  readonly exited: Promise<void>;
}

async function startReplica(name: string, databaseUrl: string): Promise<Replica> {
  const child = spawn(process.execPath, ["--import", "tsx", fixture], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: databaseUrl, REPLICA: name, GRACE_MS: "1000", POLL_MS: "250", CONCURRENCY: "4" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const output: string[] = [];
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => output.push(chunk));
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${output.join("")}`)), 20_000);
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffered += chunk;
      const match = /\{"ready":(\d+)\}/.exec(buffered);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}: ${output.join("")}`));
    });
  });
  return { name, process: child, url: `http://127.0.0.1:${port}`, output, exited };
}

async function call<T>(replica: Replica, path: string, body?: unknown): Promise<T> {
  const res = await fetch(replica.url + path, {
    method: body === undefined ? "GET" : "POST",
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  const json = (await res.json()) as T & { error?: string };
  if (!res.ok) throw new Error(`${replica.name} ${path}: ${res.status} ${json.error}`);
  return json;
}

interface Delivery {
  readonly key: string; // "<aggregate>#<sequence>"
  readonly aggregate: string;
  readonly sequence: number;
  readonly replica: string;
  readonly receivedAt: number;
  answeredAt: number | undefined;
}

/** A loopback target that answers every delivery after deliveryMs and remembers who sent what. */
async function startSlowTarget() {
  const deliveries: Delivery[] = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (c: string) => (body += c));
    req.on("end", () => {
      const p = JSON.parse(body) as { aggregateID: string; sequence: number };
      const replica = /connect-actions (\S+)/.exec(req.headers["user-agent"] ?? "")?.[1] ?? "?";
      const d: Delivery = {
        key: `${p.aggregateID}#${p.sequence}`,
        aggregate: p.aggregateID,
        sequence: p.sequence,
        replica,
        receivedAt: Date.now(),
        answeredAt: undefined,
      };
      deliveries.push(d);
      setTimeout(() => {
        if (res.destroyed) return; // the sender is gone
        d.answeredAt = Date.now();
        res.end();
      }, deliveryMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    deliveries,
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

describe("two replicas on one database", () => {
  // Registered first, so that its afterAll drops the database after the one
  // below has stopped the replicas (after-hooks run in reverse order).
  const db = useTestDatabase();
  const replicas: Replica[] = [];
  afterAll(async () => {
    for (const r of replicas) if (r.process.exitCode === null && r.process.signalCode === null) r.process.kill("SIGKILL");
    await Promise.all(replicas.map((r) => r.exited));
  });

  it("lose no event when one is killed mid-stream: the survivor delivers everything, in order per aggregate", async () => {
    const started = Date.now();
    const target = await startSlowTarget();
    try {
      const store = await createPostgresStore({ connectionString: db.url, logger: silentLogger });
      // The events are of instance "inst-1".
      const hook = await store.forInstance("inst-1").createTarget({ name: "slow", type: "webhook", endpoint: target.endpoint, timeoutMs: 1000 });
      await store.forInstance("inst-1").setExecution({ type: "event", group: "user" }, [{ target: hook.id }]);
      await store.close();

      const [a, b] = await Promise.all([startReplica("A", db.url), startReplica("B", db.url)]);
      replicas.push(a, b);

      const published: ActionEvent[] = [];
      let inFlightAtKill = new Set<string>();
      let answeredJustBeforeKill = new Set<string>();
      let killedAt = 0;
      for (let round = 0; round < rounds; round++) {
        if (round === killBeforeRound) {
          // Kill A while the target holds some of its deliveries open: it
          // has leased jobs that it will never settle.
          const open = () => target.deliveries.filter((d) => d.replica === "A" && d.answeredAt === undefined);
          for (let i = 0; i < 200 && open().length === 0; i++) await sleep(25);
          inFlightAtKill = new Set(open().map((d) => d.key));
          killedAt = Date.now();
          a.process.kill("SIGKILL");
          await a.exited;
          // A delivery answered just before the kill may not have been
          // marked complete yet: it may be delivered again, too.
          answeredJustBeforeKill = new Set(
            target.deliveries.filter((d) => d.replica === "A" && d.answeredAt !== undefined && d.answeredAt > killedAt - 250).map((d) => d.key),
          );
          expect(inFlightAtKill.size).toBeGreaterThan(0);
        }
        const events = Array.from({ length: aggregates }, (_, k): ActionEvent => ({
          aggregateID: `agg-${k}`,
          aggregateType: "user",
          resourceOwner: "org-1",
          instanceID: "inst-1",
          version: "v2",
          sequence: round + 1,
          eventType: "user.human.changed",
          createdAt: new Date(),
          userID: "",
          payload: { round },
        }));
        // Alternate the publishing replica per aggregate and round; after the
        // kill, B publishes everything.
        await Promise.all(
          events.map(async (e, k) => {
            const via = round < killBeforeRound && (k + round) % 2 === 0 ? a : b;
            expect(await call<{ queued: number }>(via, "/publish", [e])).toEqual({ queued: 1 });
            published.push(e);
          }),
        );
        await sleep(150);
      }

      const keys = new Set(published.map((e) => `${e.aggregateID}#${e.sequence}`));
      const received = () => new Set(target.deliveries.map((d) => d.key));
      for (let i = 0; [...keys].some((k) => !received().has(k)); i++) {
        if (i > 1200) throw new Error(`missing: ${[...keys].filter((k) => !received().has(k)).join(", ")}\n${b.output.join("")}`);
        await sleep(25);
      }
      for (let i = 0; (await call<{ pending: number }>(b, "/status")).pending > 0; i++) {
        if (i > 200) throw new Error("the survivor did not settle every job");
        await sleep(50);
      }
      await sleep(deliveryMs); // nothing more arrives
      const status = await call<{ pending: number; dead: unknown[] }>(b, "/status");
      expect(status).toEqual({ pending: 0, dead: [] });

      // No event lost, no event made up.
      expect([...received()].sort()).toEqual([...keys].sort());
      // In order per aggregate: first receipts follow the sequences.
      for (let k = 0; k < aggregates; k++) {
        const firsts: number[] = [];
        for (const d of target.deliveries) if (d.aggregate === `agg-${k}` && !firsts.includes(d.sequence)) firsts.push(d.sequence);
        expect(firsts, `agg-${k}`).toEqual(Array.from({ length: rounds }, (_, i) => i + 1));
      }
      // At least once: duplicates only of what A was delivering when it died,
      // first from A, then once more from B.
      const counts = new Map<string, Delivery[]>();
      for (const d of target.deliveries) counts.set(d.key, [...(counts.get(d.key) ?? []), d]);
      const duplicated = [...counts].filter(([, ds]) => ds.length > 1);
      for (const [key, ds] of duplicated) {
        expect(inFlightAtKill.has(key) || answeredJustBeforeKill.has(key), `${key} duplicated`).toBe(true);
        expect(ds.map((d) => d.replica), key).toEqual(["A", "B"]);
      }
      // What A held open was not settled: B delivered it again.
      for (const key of inFlightAtKill) expect(counts.get(key)?.map((d) => d.replica), key).toEqual(["A", "B"]);
      expect(target.deliveries.filter((d) => d.replica === "A" && d.receivedAt > Date.now())).toEqual([]);

      // The delivery log, listed from the survivor, shows the calls of both
      // replicas (A's last ones may have died in its buffer), all successful,
      // and the second attempts of the jobs A had leased.
      const log = await call<DeliveryPage>(b, `/deliveries?targetId=${hook.id}&limit=1000`);
      const byB = target.deliveries.filter((d) => d.replica === "B").length;
      const byA = target.deliveries.filter((d) => d.replica === "A" && d.answeredAt !== undefined).length;
      // A inserts its records every 200 ms: those of its last moments died with it.
      const byALate = target.deliveries.filter((d) => d.replica === "A" && d.answeredAt !== undefined && d.answeredAt > killedAt - 1000).length;
      expect(log.total).toBeGreaterThanOrEqual(byB + byA - byALate);
      expect(log.total).toBeLessThanOrEqual(byB + byA);
      expect(log.records.every((r) => r.status === 200 && r.error === undefined && r.executionId === "event/user.*")).toBe(true);
      expect(log.records.filter((r) => r.attempt === 2).length).toBeGreaterThanOrEqual(inFlightAtKill.size);
      expect((await call<DeliveryPage>(b, "/deliveries?failedOnly=1")).total).toBe(0);

      console.log(
        `replicas: ${published.length} events, ${target.deliveries.length} deliveries (${byA} answered to A, ${byB} by B), ` +
          `${inFlightAtKill.size} in flight at the kill, ${duplicated.length} duplicated, ${log.total} logged, ${Date.now() - started} ms`,
      );

      b.process.kill("SIGTERM");
      await b.exited;
      expect(b.process.exitCode).toBe(0);
    } finally {
      await target.close();
    }
  }, 60_000);
});
