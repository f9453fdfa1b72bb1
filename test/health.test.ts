// Issue 14: health for orchestrators: liveness and readiness over HTTP and grpc.health.v1; readiness turns false
// while the database cannot be reached and true again once it can.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health as HealthService, HealthCheckResponse_ServingStatus as ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { createHealth, type HealthCheck } from "../src/health/health.js";
import { startTcpProxy, type TcpProxy } from "./fixtures/tcp-proxy.js";
import { useTestDatabase } from "./helpers/postgres.js";
import { recordingLogger } from "./helpers/recording-logger.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";
import { waitFor } from "./helpers/wait.js";

/** switchable returns a check that passes while `up` is true. */
function switchable(name: string) {
  const state = { up: false, hang: false };
  const check: HealthCheck = {
    name,
    check: (signal) =>
      state.hang
        ? new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted"))))
        : state.up
          ? Promise.resolve()
          : Promise.reject(new Error(`${name} is down`)),
  };
  return { state, check };
}

describe("createHealth", () => {
  it("is ready while every check passes, reports each check, logs and announces changes, and drains for good", async () => {
    const db = switchable("db");
    const cache = switchable("cache");
    cache.state.up = true;
    const logger = recordingLogger();
    const health = createHealth({ checks: [db.check, cache.check], logger, intervalMs: 60_000, timeoutMs: 100 });
    const changes: boolean[] = [];
    health.watch((ready) => changes.push(ready));
    expect(await health.check()).toBe(false);
    expect(health.live()).toBe(true);
    expect(health.status().checks).toMatchObject({ db: { ok: false, error: "db is down" }, cache: { ok: true, error: undefined } });
    db.state.up = true;
    expect(await health.check()).toBe(true);
    // A check that does not answer within timeoutMs fails.
    cache.state.hang = true;
    expect(await health.check()).toBe(false);
    expect(health.status().checks.cache?.error).toBe("no answer within 100 ms");
    cache.state.hang = false;
    expect(await health.check()).toBe(true);
    health.drain();
    expect(health.ready()).toBe(false);
    expect(health.status().draining).toBe(true);
    expect(await health.check()).toBe(false);
    health.close();
    expect(health.live()).toBe(false);
    expect(changes).toEqual([true, false, true, false]);
    expect(logger.entries.map((e) => [e.level, e.message])).toEqual([
      ["warn", "not ready: a dependency is unavailable"],
      ["info", "ready again: every dependency answers"],
      ["warn", "not ready: a dependency is unavailable"],
      ["info", "ready again: every dependency answers"],
    ]);
  });

  it("is ready at once without checks", () => {
    const health = createHealth();
    expect(health.ready()).toBe(true);
    health.close();
  });
});

describe("the sample's health endpoints (memory)", () => {
  let h: SampleHarness;
  beforeAll(async () => {
    h = await startSampleHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it("answer liveness and readiness over HTTP and grpc.health.v1, and never run executions", async () => {
    for (const path of ["/livez", "/healthz", "/readyz", "/readyz?verbose"]) {
      const answer = await h.rest("GET", path);
      expect(answer.status, path).toBe(200);
      expect(answer.json).toEqual({ status: "ok" });
      expect(answer.headers.get("cache-control")).toBe("no-store");
    }
    expect((await fetch(`${h.server.url}/readyz`, { method: "HEAD" })).status).toBe(200);
    expect((await h.rest("POST", "/readyz", {})).status).toBe(405);
    const health = createClient(HealthService, createGrpcTransport({ baseUrl: h.server.url }));
    expect((await health.check({})).status).toBe(ServingStatus.SERVING);
    expect((await health.check({ service: "zitadel.user.v2.UserService" })).status).toBe(ServingStatus.SERVING);
    const unknown = await health.check({ service: "nope.Nope" }).catch((e: unknown) => ConnectError.from(e));
    expect((unknown as ConnectError).code).toBe(Code.NotFound);
    expect(Object.keys((await health.list({})).statuses).sort()).toEqual(["", "zitadel.user.v2.UserService"]);
    // The health service is protected: executions can neither name it nor reach it.
    const refused = await h.rest("PUT", "/v2/actions/executions", { condition: { request: { service: "grpc.health.v1.Health" } }, targets: ["x"] }, h.auth);
    expect(refused.status).toBe(400);
    expect((await h.rest("GET", "/v2/actions/executions/services", undefined, h.auth)).json.services).not.toContain("grpc.health.v1.Health");
  });
});

describe("the sample's readiness (postgres through a proxy)", () => {
  const db = useTestDatabase();
  let proxy: TcpProxy;
  let h: SampleHarness;
  beforeAll(async () => {
    const url = new URL(db.url);
    proxy = await startTcpProxy(url.hostname, Number(url.port || 5432));
    h = await startSampleHarness({ databaseUrl: proxy.url(db.url), healthIntervalMs: 100 });
  });
  afterAll(async () => {
    await h?.close();
    await proxy?.close();
  });

  it("turns false while the database cannot be reached and true again when it can, over HTTP and a gRPC Watch", async () => {
    const health = createClient(HealthService, createGrpcTransport({ baseUrl: h.server.url }));
    const watching = new AbortController();
    const seen: ServingStatus[] = [];
    const watch = (async () => {
      for await (const r of health.watch({}, { signal: watching.signal })) seen.push(r.status);
    })().catch(() => {});
    await waitFor(() => seen.length === 1, 10_000, "the first Watch answer");
    expect((await h.rest("GET", "/readyz")).status).toBe(200);

    await proxy.stop(); // a network blip: connections cut, new ones refused
    await waitFor(async () => (await h.rest("GET", "/readyz")).status === 503, 20_000, "readiness to turn false");
    expect((await h.rest("GET", "/readyz")).json).toMatchObject({ status: "unavailable", checks: { postgres: "failed" } });
    expect((await h.rest("GET", "/livez")).status).toBe(200);
    expect((await health.check({})).status).toBe(ServingStatus.NOT_SERVING);
    // Requests that need the database fail with Unavailable meanwhile.
    const during = await h.rest("POST", "/v2/users/human", { profile: { givenName: "a", familyName: "b" }, email: { email: "blip@example.com" } });
    expect(during.status).toBe(503);

    await proxy.start();
    await waitFor(async () => (await h.rest("GET", "/readyz")).status === 200, 20_000, "readiness to turn true again");
    await waitFor(() => seen.at(-1) === ServingStatus.SERVING && seen.includes(ServingStatus.NOT_SERVING), 10_000, "Watch to follow");
    expect(seen).toEqual([ServingStatus.SERVING, ServingStatus.NOT_SERVING, ServingStatus.SERVING]);
    const after = await h.rest("POST", "/v2/users/human", { profile: { givenName: "a", familyName: "b" }, email: { email: "after@example.com" } });
    expect(after.status).toBe(200);
    expect(h.logs.some((l) => l.message === "not ready: a dependency is unavailable")).toBe(true);
    expect(h.logs.some((l) => l.message === "ready again: every dependency answers")).toBe(true);
    watching.abort();
    await watch;
  });
});
