// Issue 14: a throwaway PostgreSQL cluster of its own (initdb + pg_ctl on a free port, as .ci/run starts one) is
// stopped and started again while requests keep coming: requests that need the database fail with Unavailable
// meanwhile, nothing ends the process, interception keeps serving from the last plan, readiness follows the
// database, and everything recovers by itself.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../src/logger.js";
import { createPostgresStore, type PostgresStore } from "../src/postgres/store.js";
import { addUser, type InterceptedServer, startInterceptedServer } from "./helpers/intercepted-server.js";
import { type PgCluster, startPgCluster } from "./helpers/pg-cluster.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";
import { waitFor } from "./helpers/wait.js";

describe("a PostgreSQL cluster stopped and started mid-load", () => {
  let cluster: PgCluster;
  let h: SampleHarness;
  let store: PostgresStore;
  let intercepted: InterceptedServer;
  beforeAll(async () => {
    cluster = await startPgCluster();
    h = await startSampleHarness({ databaseUrl: cluster.url, healthIntervalMs: 100 });
    // A service that needs no database of its own, whose executions live in the same PostgreSQL.
    store = await createPostgresStore({ connectionString: cluster.url, logger: silentLogger });
    intercepted = await startInterceptedServer({ store });
  }, 120_000);
  afterAll(async () => {
    await intercepted?.close();
    await store?.close();
    await h?.close();
    await cluster?.destroy();
  });

  it("fails requests that need it with Unavailable, keeps intercepting from the last plan, and recovers", async () => {
    h.targets.route("/hook", { status: 200 });
    h.targets.route("/events", { status: 200 });
    const hook = await intercepted.store.createTarget({ name: "hook", type: "webhook", interruptOnError: true, endpoint: h.targets.endpoint("/hook"), timeoutMs: 5000 });
    await intercepted.store.setExecution({ type: "request", method: "/zitadel.user.v2.UserService/AddHumanUser" }, [{ target: hook.id }]);
    const admin = h.actions();
    const { id: events } = await admin.createTarget({
      name: "events",
      targetType: { case: "restWebhook", value: { interruptOnError: false } },
      endpoint: h.targets.endpoint("/events"),
      timeout: { seconds: 5n },
    });
    await admin.setExecution({ condition: { conditionType: { case: "event", value: { condition: { case: "event", value: "user.human.added" } } } }, targets: [events] });

    // Load on both servers until told to stop, each answer recorded with the phase it was sent in.
    let phase: "before" | "down" | "after" = "before";
    let running = true;
    const answers: { phase: string; server: string; outcome: string }[] = [];
    const sent = new Map<string, number>();
    const outcome = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => Code[ConnectError.from(e).code] ?? "?");
    let n = 0;
    const load = async (server: "sample" | "intercepted") => {
      while (running) {
        const at = phase;
        sent.set(at, (sent.get(at) ?? 0) + 1);
        const client = server === "sample" ? h.users() : intercepted.client("connect");
        const answer = await outcome(client.addHumanUser(addUser("Load", `${server}${n++}`)));
        answers.push({ phase: at, server, outcome: answer });
      }
    };
    const loads = [load("sample"), load("sample"), load("intercepted"), load("intercepted")];
    const count = (server: string, p: string, o?: string) => answers.filter((a) => a.server === server && a.phase === p && (o === undefined || a.outcome === o)).length;
    await waitFor(() => count("sample", "before") >= 20 && count("intercepted", "before") >= 20, 60_000, "load before the outage");
    // Requests are sent in the "down" phase from now on; those of "before" are answered before the stop.
    phase = "down";
    await waitFor(() => answers.filter((a) => a.phase === "before").length === sent.get("before"), 30_000, "the answers of before");
    const createdBefore = count("sample", "before", "ok");
    await cluster.stop();
    await waitFor(async () => (await h.rest("GET", "/readyz")).status === 503, 30_000, "readiness to turn false");
    await waitFor(() => count("sample", "down") >= 20 && count("intercepted", "down") >= 20, 60_000, "load during the outage");
    expect((await h.rest("GET", "/livez")).status).toBe(200);

    await cluster.start();
    await waitFor(async () => (await h.rest("GET", "/readyz")).status === 200, 60_000, "readiness to turn true again");
    phase = "after";
    await waitFor(() => count("sample", "after", "ok") >= 20 && count("intercepted", "after", "ok") >= 20, 60_000, "load after the outage");
    running = false;
    await Promise.all(loads);

    const summary = Object.fromEntries(
      ["before", "down", "after"].flatMap((p) =>
        ["sample", "intercepted"].map((s) => [`${s} ${p}`, Object.fromEntries([...new Set(answers.filter((a) => a.phase === p && a.server === s).map((a) => a.outcome))].map((o) => [o, count(s, p, o)]))]),
      ),
    );
    console.log(JSON.stringify(summary));
    // Before: everything works. Down: the sample's writes fail with Unavailable only (requests sent before the
    // stop took effect succeed), the intercepted service goes on with its targets from the last plan.
    expect(count("sample", "before") - count("sample", "before", "ok")).toBe(0);
    expect(count("sample", "down", "Unavailable")).toBeGreaterThan(0);
    expect(count("sample", "down") - count("sample", "down", "Unavailable") - count("sample", "down", "ok")).toBe(0);
    expect(count("intercepted", "down")).toBe(count("intercepted", "down", "ok"));
    expect(count("intercepted", "before")).toBe(count("intercepted", "before", "ok"));
    // After: a short tail of Unavailable is allowed while connections come back, then every request succeeds.
    const after = answers.filter((a) => a.phase === "after");
    const lastFailure = after.findLastIndex((a) => a.outcome !== "ok");
    expect(after.slice(lastFailure + 1).length).toBeGreaterThanOrEqual(40);
    expect(after.filter((a) => a.outcome !== "ok" && a.outcome !== "Unavailable")).toEqual([]);
    // Every intercepted request called the target.
    expect(h.targets.callsTo("/hook").length).toBe(answers.filter((a) => a.server === "intercepted" && a.outcome === "ok").length);

    // The LISTEN connections are back: a change made through the sample reaches the other server's plan.
    await intercepted.store.deleteTarget(hook.id);
    const calls = h.targets.callsTo("/hook").length;
    await waitFor(async () => {
      await intercepted.client("connect").addHumanUser(addUser("Check", `c${n++}`));
      return h.targets.callsTo("/hook").length === calls;
    }, 30_000, "the other server to see the deletion");
    // Events of users created before the outage and after it are delivered.
    expect(createdBefore).toBeGreaterThan(0);
    const users = await h.server.users().list();
    await waitFor(
      () => {
        const delivered = new Set(h.targets.callsTo("/events").map((c) => c.json?.aggregateID));
        return users.every((u) => delivered.has(u.user.userId));
      },
      60_000,
      `the events of all ${users.length} users`,
      50,
    );
  }, 300_000);
});
