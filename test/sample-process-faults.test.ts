// Issue 14, against `npm start`'s server in child processes with the real PostgreSQL: backends terminated under
// load end nothing and lose no event of a user that exists; SIGTERM lets the calls in flight finish; a delivery cut
// off by a shutdown is taken over by another replica at once; `npm start` passes signals on.
import http from "node:http";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { useTestDatabase } from "./helpers/postgres.js";
import { type SampleProcess, spawnSample } from "./helpers/sample-process.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";
import { waitFor } from "./helpers/wait.js";

const token = "process-test-token";
const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };

/** post sends one JSON request with node:http on a connection of its own; resolves the status and the parsed body. */
function post(url: string, path: string, body: unknown, headers: Record<string, string> = { "content-type": "application/json" }, method = "POST") {
  return new Promise<{ status: number; json: any }>((resolve, reject) => {
    const u = new URL(path, url);
    const text = JSON.stringify(body);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: { ...headers, "content-length": Buffer.byteLength(text) }, agent: false },
      (res) => {
        let data = "";
        res.setEncoding("utf8").on("data", (c: string) => (data += c));
        res.on("end", () => {
          let json: unknown;
          try {
            json = data === "" ? undefined : JSON.parse(data);
          } catch {
            json = data;
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(text);
  });
}

const newUser = (n: string) => ({ profile: { givenName: "Load", familyName: n }, email: { email: `load.${n}@example.com` } });

/** setUp creates a target at `endpoint` and sets it on `condition`; resolves the target's ID. */
async function setUp(sample: SampleProcess, name: string, endpoint: string, kind: object, timeout: string, condition: object): Promise<string> {
  const created = await post(sample.url, "/v2beta/actions/targets", { name, ...kind, endpoint, timeout }, auth);
  expect(created.status, JSON.stringify(created.json)).toBe(200);
  const set = await post(sample.url, "/v2beta/actions/executions", { condition, targets: [created.json.id] }, auth, "PUT");
  expect(set.status, JSON.stringify(set.json)).toBe(200);
  return created.json.id as string;
}

const started: SampleProcess[] = [];
afterEach(() => {
  for (const s of started.splice(0)) s.kill();
});

describe("backends terminated under load", () => {
  const db = useTestDatabase();
  let targets: TargetServer;
  beforeAll(async () => {
    targets = await startTargetServer();
  });
  afterAll(async () => {
    await targets?.close();
  });

  it("never end the process, answer Unavailable meanwhile, recover, and every user that exists gets its event", async () => {
    const sample = await spawnSample({ DATABASE_URL: db.url, ACTIONS_ADMIN_TOKEN: token });
    started.push(sample);
    await setUp(sample, "events", targets.endpoint("/events"), { restWebhook: {} }, "5s", { event: { event: "user.human.added" } });

    const total = 600;
    const parallel = 8;
    const statuses = new Map<number, number>();
    const acknowledged: string[] = [];
    let next = 0;
    let done = 0;
    const worker = async () => {
      for (let i = next++; i < total; i = next++) {
        const answer = await post(sample.url, "/v2/users/human", newUser(`u${i}`));
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 200) acknowledged.push(answer.json.userId);
        done++;
      }
    };
    // Every PostgreSQL connection of the database, the pool's and the LISTEN ones, is terminated three times mid-load.
    let terminated = 0;
    const killer = async () => {
      for (const at of [100, 250, 400]) {
        await waitFor(() => done >= at, 120_000, `${at} answers`, 2);
        const rows = await db.query<{ n: number }>(
          "SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
          [db.name],
        );
        terminated += rows[0]?.n ?? 0;
      }
    };
    await Promise.all([...Array.from({ length: parallel }, worker), killer()]);
    expect(terminated).toBeGreaterThan(0);
    // Still running, and every answer was a success or Unavailable: nothing else, no crash.
    expect(sample.child.exitCode).toBeNull();
    expect([...statuses.keys()].filter((s) => s !== 200 && s !== 503)).toEqual([]);
    expect(sample.stderr()).not.toMatch(/Unhandled 'error' event|uncaughtException/);
    // It recovers by itself.
    await waitFor(async () => (await post(sample.url, "/v2/users/human", newUser(`r${done++}`))).status === 200, 30_000, "a request to succeed again");
    for (let i = 0; i < 5; i++) expect((await post(sample.url, "/v2/users/human", newUser(`after${i}`))).status).toBe(200);

    // Acknowledged users exist; every user that exists gets its user.human.added event, and no other user does.
    const users = new Set((await db.query<{ id: string }>("SELECT id FROM connect_actions_sample.users")).map((r) => r.id));
    expect(acknowledged.filter((id) => !users.has(id))).toEqual([]);
    const delivered = () => new Set(targets.callsTo("/events").map((c) => c.json?.aggregateID as string));
    await waitFor(() => [...users].every((id) => delivered().has(id)), 120_000, `the events of all ${users.size} users`, 100);
    expect([...delivered()].filter((id) => !users.has(id))).toEqual([]);
    expect(targets.callsTo("/events").every((c) => c.json?.event_type === "user.human.added")).toBe(true);
    console.log(
      `terminated ${terminated} backends during ${total} requests: ${JSON.stringify(Object.fromEntries(statuses))}; ` +
        `${users.size} users, ${targets.callsTo("/events").length} deliveries`,
    );
  }, 240_000);
});

describe("SIGTERM", () => {
  const db = useTestDatabase();
  let targets: TargetServer;
  beforeAll(async () => {
    targets = await startTargetServer();
  });
  afterAll(async () => {
    await targets?.close();
  });

  it("lets the calls waiting on a request-phase target finish, accepts no new connection, and exits 0", async () => {
    const sample = await spawnSample({ DATABASE_URL: db.url, ACTIONS_ADMIN_TOKEN: token, SHUTDOWN_GRACE_MS: "60000" });
    started.push(sample);
    targets.route("/slow", { status: 200, delayMs: 2000 });
    await setUp(sample, "slow", targets.endpoint("/slow"), { restWebhook: { interruptOnError: true } }, "30s", {
      request: { method: "/zitadel.user.v2.UserService/AddHumanUser" },
    });
    const inFlight = 12;
    const calls = Array.from({ length: inFlight }, (_, i) => post(sample.url, "/v2/users/human", newUser(`term${i}`)));
    await targets.waitFor("/slow", inFlight, 60_000);
    sample.child.kill("SIGTERM");
    const draining = await sample.waitForLog("shutting down: not ready");
    expect(draining.requests).toBe(inFlight);
    // No new connection is accepted while the calls finish.
    const refused = await post(sample.url, "/v2/users/human", newUser("late")).then(
      () => "answered",
      (e: { code?: string }) => e.code,
    );
    expect(refused, sample.stderr()).toBe("ECONNREFUSED");
    const answers = await Promise.all(calls);
    expect(answers.map((a) => a.status)).toEqual(Array(inFlight).fill(200));
    expect(await sample.exited).toEqual({ code: 0, signal: null });
    expect(sample.logs.map((l) => l.msg)).toContain("shut down");
    const users = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM connect_actions_sample.users");
    expect(users[0]?.n).toBe(inFlight);
  }, 120_000);

  it("cancels a hanging delivery at the end of the grace period and releases it: another replica delivers it at once", async () => {
    let hang = true;
    targets.route("/events", () => (hang ? { delayMs: 600_000 } : { status: 200 }));
    const a = await spawnSample({ DATABASE_URL: db.url, ACTIONS_ADMIN_TOKEN: token, SHUTDOWN_GRACE_MS: "1000" });
    started.push(a);
    // A lease lasts the target's timeout and 5 s: 125 s; the replica below must not wait for it.
    await setUp(a, "hanging", targets.endpoint("/events"), { restWebhook: {} }, "120s", { event: { event: "user.human.added" } });
    const created = await post(a.url, "/v2/users/human", newUser("hung"));
    expect(created.status).toBe(200);
    await targets.waitFor("/events", 1, 60_000);
    a.child.kill("SIGTERM");
    expect(await a.exited).toEqual({ code: 0, signal: null });
    const messages = a.logs.map((l) => l.msg);
    expect(messages).toContain("shutting down: grace period over, cancelling what still runs");
    expect(messages).toContain("event delivery cancelled by stop, released");
    hang = false;
    const b = await spawnSample({ DATABASE_URL: db.url, ACTIONS_ADMIN_TOKEN: token });
    started.push(b);
    const calls = await targets.waitFor("/events", 2, 60_000);
    expect(calls[1]?.json?.aggregateID).toBe(created.json.userId);
    b.child.kill("SIGTERM");
    expect((await b.exited).code).toBe(0);
  }, 180_000);

  it("reaches the server when sent to the pid of `npm start`: no orphan keeps listening", async () => {
    const sample = await spawnSample({ ACTIONS_ADMIN_TOKEN: token }, { viaNpm: true });
    started.push(sample);
    expect((await post(sample.url, "/readyz", {}, {}, "GET")).status).toBe(200);
    process.kill(sample.pid, "SIGTERM");
    expect(await sample.exited).toEqual({ code: 0, signal: null });
    const after = await post(sample.url, "/readyz", {}, {}, "GET").then(
      () => "answered",
      (e: { code?: string }) => e.code,
    );
    expect(after).toBe("ECONNREFUSED");
  }, 120_000);
});

