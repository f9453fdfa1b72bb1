import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEndpointGuard } from "../src/dispatch/endpoint-guard.js";
import { silentLogger } from "../src/logger.js";
import { createTargetDispatcher, targetStatusOf } from "../src/dispatch/target-dispatcher.js";
import { isPermanentFailure } from "../src/events/event-worker.js";
import type { Target } from "../src/target.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

const date = new Date();
const target = (endpoint: string): Target => ({
  id: "t", name: "t", type: "webhook", interruptOnError: true, endpoint, timeoutMs: 2000,
  instanceId: "", signingKey: "k".repeat(36), payloadType: "json", creationDate: date, changeDate: date,
});

describe("createEndpointGuard", () => {
  const guard = createEndpointGuard({ denyInternal: true });

  it.each([
    ["127.0.0.1", "loopback"],
    ["127.9.9.9", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["169.254.169.254", "metadata"],
    ["fd00:ec2::254", "metadata"],
    ["100.100.100.200", "metadata"],
    ["fe80::1", "link-local"],
    ["0.0.0.0", "unspecified"],
  ])("denies %s (%s)", (address) => {
    expect(guard.denied(address)).toBeDefined();
  });

  it.each(["93.184.216.34", "10.0.0.1", "192.168.1.1", "2001:db8::1", "example.com"])("allows %s by default", (address) => {
    expect(guard.denied(address)).toBeUndefined();
  });

  it("denies private networks only when asked", () => {
    const strict = createEndpointGuard({ denyInternal: true, denyPrivate: true });
    expect(strict.denied("10.1.2.3")).toMatch(/private/);
    expect(strict.denied("172.20.0.1")).toMatch(/private/);
    expect(strict.denied("fd12::1")).toMatch(/unique local/);
    expect(strict.denied("172.32.0.1")).toBeUndefined();
  });

  it("lets the allowlist through: addresses, ranges and names", () => {
    const g = createEndpointGuard({ denyInternal: true, allow: ["127.0.0.2", "169.254.0.0/16", "hooks.localhost"] });
    expect(g.denied("127.0.0.2")).toBeUndefined();
    expect(g.denied("127.0.0.1")).toBeDefined();
    expect(g.denied("169.254.169.254")).toBeUndefined();
    expect(() => g.checkEndpoint("http://hooks.localhost/x")).not.toThrow();
  });

  it("rejects bad allow entries", () => {
    expect(() => createEndpointGuard({ allow: ["10.0.0.0/33"] })).toThrow(ConnectError);
    expect(() => createEndpointGuard({ allow: ["name/8"] })).toThrow(ConnectError);
  });

  it("checks endpoints when targets are saved: IP literals and localhost names", () => {
    for (const endpoint of ["http://127.0.0.1:8080/", "http://[::1]/", "http://169.254.169.254/latest/meta-data", "http://localhost:9/", "http://api.localhost/"]) {
      expect(() => guard.checkEndpoint(endpoint), endpoint).toThrow(expect.objectContaining({ code: Code.InvalidArgument }) as unknown as Error);
    }
    expect(() => guard.checkEndpoint("https://hooks.example.com/x")).not.toThrow();
  });

  it("denies nothing when disabled (the default outside production)", () => {
    const off = createEndpointGuard({ denyInternal: false });
    expect(off.enabled).toBe(false);
    expect(off.denied("127.0.0.1")).toBeUndefined();
    expect(() => off.checkEndpoint("http://localhost/")).not.toThrow();
  });
});

describe("dispatcher with an endpoint guard", () => {
  let targets: TargetServer;
  beforeAll(async () => {
    targets = await startTargetServer();
  });
  afterAll(async () => {
    await targets.close();
  });

  it("refuses IP literals and names that resolve to denied addresses, permanently, without connecting", async () => {
    const dispatcher = createTargetDispatcher({ logger: silentLogger, endpointGuard: createEndpointGuard({ denyInternal: true }) });
    const port = new URL(targets.url).port;
    for (const endpoint of [`http://127.0.0.1:${port}/ssrf`, `http://localhost:${port}/ssrf`, `http://[::ffff:127.0.0.1]:${port}/ssrf`]) {
      const error = await dispatcher.call({ target: target(endpoint), executionId: "request", body: "{}" }).catch((e: unknown) => e);
      expect(error, endpoint).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code).toBe(Code.FailedPrecondition);
      expect(isPermanentFailure(error)).toBe(true);
      expect(targetStatusOf(error)).toBe(0);
    }
    expect(targets.callsTo("/ssrf")).toEqual([]);
    await dispatcher.close();
  });

  it("calls allowlisted internal targets", async () => {
    const dispatcher = createTargetDispatcher({
      logger: silentLogger,
      endpointGuard: createEndpointGuard({ denyInternal: true, allow: ["127.0.0.1"] }),
    });
    const port = new URL(targets.url).port;
    expect((await dispatcher.call({ target: target(`http://localhost:${port}/allowed`), executionId: "request", body: "{}" })).status).toBe(200);
    expect(targets.callsTo("/allowed")).toHaveLength(1);
    await dispatcher.close();
  });
});
