import { exec } from "node:child_process";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Condition } from "../src/condition.js";
import { verifySignature } from "../src/dispatch/signature.js";
import type { Target, TargetInput } from "../src/target.js";
import { createGrpcJsClient, type GrpcJsClient } from "./helpers/grpc-js-client.js";
import { addUser, humanOf, type InterceptedServer, protocols, startInterceptedServer } from "./helpers/intercepted-server.js";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

const execAsync = promisify(exec);
const ADD = "/zitadel.user.v2.UserService/AddHumanUser";
const SERVICE = "zitadel.user.v2.UserService";
const onAddRequest: Condition = { type: "request", method: ADD };
const onAddResponse: Condition = { type: "response", method: ADD };

type Kind = (typeof protocols)[number] | "grpc-js";
const kinds: readonly Kind[] = [...protocols, "grpc-js"];

interface Failure {
  readonly code: Code;
  readonly message: string;
}

/** The UserService as seen by one kind of client, errors normalized to {code, message}. */
interface Api {
  add(req: ReturnType<typeof addUser>): Promise<{ userId: string }>;
  givenName(userId: string): Promise<string>;
}

let targets: TargetServer;
let server: InterceptedServer;
let grpcJs: GrpcJsClient;

function api(kind: Kind): Api {
  if (kind === "grpc-js") {
    const wrap = async <T>(p: Promise<T>) => {
      try {
        return await p;
      } catch (e) {
        const { code, details } = e as { code: number; details: string };
        throw { code: code as Code, message: details } satisfies Failure;
      }
    };
    return {
      add: (req) => wrap(grpcJs.unary("AddHumanUser", req)),
      givenName: async (userId) =>
        (await wrap(grpcJs.unary("GetUserByID", { userId }))).user.human.profile.givenName as string,
    };
  }
  const client = server.client(kind);
  const wrap = async <T>(p: Promise<T>) => {
    try {
      return await p;
    } catch (e) {
      const err = ConnectError.from(e);
      throw { code: err.code, message: err.rawMessage } satisfies Failure;
    }
  };
  return {
    add: (req) => wrap(client.addHumanUser(req)),
    givenName: async (userId) => humanOf((await wrap(client.getUserByID({ userId }))).user)?.profile?.givenName ?? "",
  };
}

async function failure(p: Promise<unknown>): Promise<Failure> {
  try {
    await p;
  } catch (e) {
    return e as Failure;
  }
  throw new Error("expected the call to fail");
}

async function target(path: string, input: Partial<TargetInput> = {}): Promise<Target> {
  return server.store.createTarget({ name: path, type: "webhook", endpoint: targets.endpoint(path), timeoutMs: 5000, ...input });
}

beforeAll(async () => {
  targets = await startTargetServer();
});
afterAll(async () => {
  await targets.close();
});
beforeEach(async () => {
  targets.calls.length = 0;
  server = await startInterceptedServer();
  grpcJs = createGrpcJsClient(server.url, "zitadel/user/v2/user_service.proto", "zitadel.user.v2.UserService");
});
afterEach(async () => {
  grpcJs.close();
  await server.close();
});

describe.each(kinds)("over %s", (kind) => {
  it("passes calls through untouched when no execution matches", async () => {
    const { userId } = await api(kind).add(addUser("Grace"));
    expect(await api(kind).givenName(userId)).toBe("Grace");
    expect(targets.calls).toEqual([]);
  });

  it("lets a request call target rewrite the request the handler sees", async () => {
    targets.route("/rewrite", (call) => ({
      body: { ...call.json.request, profile: { ...call.json.request.profile, givenName: "Rewritten" } },
    }));
    const t = await target("/rewrite", { type: "call", interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    const { userId } = await api(kind).add(addUser("Original"));
    expect(await api(kind).givenName(userId)).toBe("Rewritten");
    expect(targets.callsTo("/rewrite")[0]!.json.request.profile.givenName).toBe("Original");
  });

  it("lets a response call target rewrite the reply", async () => {
    targets.route("/reply", (call) => ({ body: { ...call.json.response, userId: `rewritten-${call.json.response.userId}` } }));
    const t = await target("/reply", { type: "call", interruptOnError: true });
    await server.store.setExecution(onAddResponse, [{ target: t.id }]);
    const { userId } = await api(kind).add(addUser());
    expect(userId).toMatch(/^rewritten-\d+$/);
    const payload = targets.callsTo("/reply")[0]!.json;
    expect(payload.fullMethod).toBe(ADD);
    expect(payload.request.profile.givenName).toBe("Ada");
    expect(`rewritten-${payload.response.userId}`).toBe(userId);
  });

  it("interrupts with FailedPrecondition when an interrupting webhook answers 500", async () => {
    targets.route("/fail", { status: 500 });
    const t = await target("/fail", { interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    const f = await failure(api(kind).add(addUser()));
    expect(f).toEqual({ code: Code.FailedPrecondition, message: "Execution failed" });
  });

  it("goes on when a non-interrupting webhook answers 500", async () => {
    targets.route("/fail-soft", { status: 500 });
    const t = await target("/fail-soft", { interruptOnError: false });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    const { userId } = await api(kind).add(addUser("Soft"));
    expect(await api(kind).givenName(userId)).toBe("Soft");
    expect(targets.callsTo("/fail-soft").length).toBe(1);
    expect(server.logs.some((l) => l.message === "target failed, continuing" && l.attributes?.target === "/fail-soft")).toBe(true);
  });

  it("keeps the code and message of a forwarded 4xx", async () => {
    targets.route("/forbid", { body: { forwardedStatusCode: 403, forwardedErrorMessage: "not on my watch" } });
    const t = await target("/forbid", { interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    expect(await failure(api(kind).add(addUser()))).toEqual({ code: Code.PermissionDenied, message: "not on my watch" });
  });
});

describe("target semantics", () => {
  it("honours a target's timeout", async () => {
    // The target answers only once the RPC has failed: the RPC cannot have waited for it.
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    targets.route("/slow", () => answered.then(() => ({ status: 200 })));
    const t = await target("/slow", { timeoutMs: 200, interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    const f = await failure(api("connect").add(addUser()));
    answer();
    expect(f.code).toBe(Code.FailedPrecondition);
    expect(server.records.find((r) => r.targetId === t.id)?.error).toMatch(/timed out after 200 ms/);
  });

  it("goes on after a timeout when the target does not interrupt", async () => {
    targets.route("/slow-soft", { delayMs: 3000 });
    const t = await target("/slow-soft", { timeoutMs: 200 });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    expect((await api("connect").add(addUser())).userId).toMatch(/^\d+$/);
  });

  it("does not delay the reply for a slow async target, which still gets its call", async () => {
    // The target answers only after the reply arrived: the reply cannot have waited for it.
    let answer!: () => void;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    targets.route("/async", () => answered.then(() => ({ status: 200 })));
    const t = await target("/async", { type: "async", timeoutMs: 10_000 });
    await server.store.setExecution(onAddResponse, [{ target: t.id }]);
    const { userId } = await api("connect").add(addUser());
    const [call] = await targets.waitFor("/async", 1);
    expect(call!.json.response.userId).toBe(userId);
    // The async call is still running: the reply did not wait for it.
    expect(server.records.filter((r) => r.targetId === t.id).length).toBe(0);
    answer();
    await server.dispatcher.idle();
    expect(server.records.filter((r) => r.targetId === t.id && r.async && r.error === undefined).length).toBe(1);
  }, 20_000);

  it("runs async targets in parallel", async () => {
    // Neither answers before both calls arrived: run one after the other, the first would time out.
    let arrived = 0;
    let bothArrived!: () => void;
    const both = new Promise<void>((resolve) => (bothArrived = resolve));
    const gate = () => {
      if (++arrived === 2) bothArrived();
      return both.then(() => ({ status: 200 }));
    };
    targets.route("/par-a", gate);
    targets.route("/par-b", gate);
    const a = await target("/par-a", { type: "async" });
    const b = await target("/par-b", { type: "async" });
    await server.store.setExecution(onAddRequest, [{ target: a.id }, { target: b.id }]);
    await api("connect").add(addUser());
    await Promise.all([targets.waitFor("/par-a"), targets.waitFor("/par-b")]);
    const [ca] = targets.callsTo("/par-a");
    const [cb] = targets.callsTo("/par-b");
    expect([ca, cb].every((c) => c !== undefined)).toBe(true);
    await server.dispatcher.idle();
    expect(server.records.filter((r) => (r.targetId === a.id || r.targetId === b.id) && r.error === undefined).length).toBe(2);
  });

  it("treats an empty call body as no change", async () => {
    const t = await target("/empty", { type: "call", interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    const { userId } = await api("connect").add(addUser("Kept"));
    expect(await api("connect").givenName(userId)).toBe("Kept");
  });

  it("rejects a call body with unknown fields: interrupting or skipped", async () => {
    targets.route("/unknown", { body: { noSuchField: 1 } });
    const t = await target("/unknown", { type: "call", interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    expect((await failure(api("connect").add(addUser()))).code).toBe(Code.FailedPrecondition);
    await server.store.updateTarget(t.id, { interruptOnError: false });
    const { userId } = await api("connect").add(addUser("Unchanged"));
    expect(await api("connect").givenName(userId)).toBe("Unchanged");
  });

  it("rejects a call body that is not JSON", async () => {
    targets.route("/garbage", { body: "<html>oops</html>" });
    const t = await target("/garbage", { type: "call", interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    expect((await failure(api("connect").add(addUser()))).code).toBe(Code.FailedPrecondition);
    expect(server.records.at(-1)?.error).toMatch(/not JSON/);
  });

  it("interrupts on a connection error", async () => {
    const t = await server.store.createTarget({
      name: "refused", type: "webhook", endpoint: "http://127.0.0.1:9/", timeoutMs: 2000, interruptOnError: true,
    });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    // Not ZITADEL's Unknown with the raw transport error: the detail stays in the records.
    expect(await failure(api("connect").add(addUser()))).toEqual({ code: Code.FailedPrecondition, message: "Execution failed" });
    expect(server.records.at(-1)?.error).toMatch(/could not be reached/);
  });

  it("treats a redirect as a failure instead of following it", async () => {
    targets.route("/redirect", { status: 307 });
    const t = await target("/redirect", { interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    expect((await failure(api("connect").add(addUser()))).code).toBe(Code.FailedPrecondition);
    expect(targets.callsTo("/redirect").length).toBe(1);
  });

  it("runs targets in their listed order, each seeing the message the previous one returned", async () => {
    targets.route("/first", (c) => ({ body: { ...c.json.request, profile: { givenName: "First", familyName: "X" } } }));
    targets.route("/second", (c) => ({ body: { ...c.json.request, profile: { ...c.json.request.profile, familyName: "Second" } } }));
    const first = await target("/first", { type: "call", interruptOnError: true });
    const hook = await target("/hook");
    const second = await target("/second", { type: "call", interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: first.id }, { target: hook.id }, { target: second.id }]);
    const { userId } = await api("connect").add(addUser("Orig"));
    expect(targets.calls.map((c) => c.path)).toEqual(["/first", "/hook", "/second"]);
    expect(targets.callsTo("/hook")[0]!.json.request.profile.givenName).toBe("First");
    expect(targets.callsTo("/second")[0]!.json.request.profile).toEqual({ givenName: "First", familyName: "X" });
    const client = server.client("connect");
    const user = await client.getUserByID({ userId });
    expect(humanOf(user.user)?.profile).toMatchObject({ givenName: "First", familyName: "Second" });
  });

  it("stops at the first interrupting failure: later targets and the handler do not run", async () => {
    targets.route("/boom", { status: 502 });
    const boom = await target("/boom", { interruptOnError: true });
    const after = await target("/after");
    await server.store.setExecution(onAddRequest, [{ target: boom.id }, { target: after.id }]);
    const resp = await target("/resp");
    await server.store.setExecution(onAddResponse, [{ target: resp.id }]);
    expect((await failure(api("connect").add(addUser()))).code).toBe(Code.FailedPrecondition);
    expect(targets.calls.map((c) => c.path)).toEqual(["/boom"]);
    expect((await server.client("connect").listUsers({})).result).toEqual([]);
  });

  it("runs no response target when the handler fails", async () => {
    const req = await target("/req");
    const res = await target("/res");
    await server.store.setExecution(onAddRequest, [{ target: req.id }]);
    await server.store.setExecution(onAddResponse, [{ target: res.id }]);
    const f = await failure(api("connect").add({ profile: { givenName: "", familyName: "" }, email: { email: "x@y.zz" } }));
    expect(f.code).toBe(Code.InvalidArgument);
    expect(targets.calls.map((c) => c.path)).toEqual(["/req"]);
  });

  it("lets streaming RPCs pass through untouched", async () => {
    targets.route("/never", { status: 500 });
    const t = await target("/never", { interruptOnError: true });
    await server.store.setExecution({ type: "request", all: true }, [{ target: t.id }]);
    await server.store.setExecution({ type: "response", all: true }, [{ target: t.id }]);
    const users = [];
    for await (const u of server.client("grpc").watchUsers({})) users.push(u);
    expect(users).toEqual([]);
    expect(targets.calls).toEqual([]);
  });
});

describe("best match", () => {
  it("runs only the method's execution, else the service's, else all's", async () => {
    const m = await target("/method");
    const s = await target("/service");
    const a = await target("/all");
    await server.store.setExecution({ type: "request", all: true }, [{ target: a.id }]);
    await server.store.setExecution({ type: "request", service: SERVICE }, [{ target: s.id }]);
    await server.store.setExecution(onAddRequest, [{ target: m.id }]);
    await api("grpc").add(addUser());
    expect(targets.calls.map((c) => c.path)).toEqual(["/method"]);
    // Another method of the service gets the service's execution.
    await server.client("grpc").listUsers({});
    expect(targets.calls.map((c) => c.path)).toEqual(["/method", "/service"]);
    // Removing the method's execution lets the service's apply, at once.
    await server.store.setExecution(onAddRequest, []);
    await api("grpc").add(addUser());
    expect(targets.calls.at(-1)!.path).toBe("/service");
    await server.store.setExecution({ type: "request", service: SERVICE }, []);
    await api("grpc").add(addUser());
    expect(targets.calls.at(-1)!.path).toBe("/all");
    expect(targets.calls.length).toBe(4);
  });

  it("keeps request and response matches apart", async () => {
    const rq = await target("/rq");
    const rs = await target("/rs");
    await server.store.setExecution({ type: "request", all: true }, [{ target: rq.id }]);
    await server.store.setExecution({ type: "response", service: SERVICE }, [{ target: rs.id }]);
    await api("connect").add(addUser());
    expect(targets.calls.map((c) => [c.path, "response" in c.json])).toEqual([
      ["/rq", false],
      ["/rs", true],
    ]);
  });

  it("expands includes in place, each target once", async () => {
    const a = await target("/a");
    const b = await target("/b");
    const c = await target("/c");
    await server.store.setExecution({ type: "request", service: SERVICE }, [{ target: b.id }, { target: a.id }]);
    await server.store.setExecution(onAddRequest, [{ target: a.id }, { include: `request/${SERVICE}` }, { target: c.id }]);
    await api("connect").add(addUser());
    expect(targets.calls.map((x) => x.path)).toEqual(["/a", "/b", "/c"]);
  });

  it("sees target changes at once", async () => {
    targets.route("/v1", { status: 500 });
    const t = await target("/v1", { interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    expect((await failure(api("connect").add(addUser()))).code).toBe(Code.FailedPrecondition);
    await server.store.updateTarget(t.id, { endpoint: targets.endpoint("/v2") });
    await api("connect").add(addUser());
    await server.store.deleteTarget(t.id);
    await api("connect").add(addUser());
    expect(targets.calls.map((c) => c.path)).toEqual(["/v1", "/v2"]);
  });
});

describe("payload and signature", () => {
  it("sends exactly the ZITADEL payload, keys in order, with the allowed headers", async () => {
    const t = await target("/payload");
    await server.store.setExecution(onAddResponse, [{ target: t.id }]);
    const client = server.client("connect");
    const res = await client.addHumanUser(addUser("Pay", "Load", "pay@example.com"), {
      headers: {
        "x-zitadel-orgid": "org-1",
        "x-zitadel-user": "user-1",
        "x-forwarded-for": "203.0.113.7",
        origin: "https://app.example.com",
        "x-secret": "must not leak",
        authorization: "Bearer must-not-leak",
      },
    });
    const [call] = targets.callsTo("/payload");
    expect(call!.headers["content-type"]).toBe("application/json");
    expect(Object.keys(call!.json)).toEqual(["fullMethod", "instanceID", "orgID", "userID", "request", "response", "headers"]);
    expect(call!.json).toMatchObject({
      fullMethod: ADD,
      instanceID: "test-instance",
      orgID: "org-1",
      userID: "user-1",
      request: { profile: { givenName: "Pay", familyName: "Load" }, email: { email: "pay@example.com" } },
      response: { userId: res.userId, details: { sequence: "1", resourceOwner: "org-1" } },
    });
    expect(call!.json.headers).toEqual({
      "Content-Type": ["application/proto"],
      Host: [new URL(server.url).host],
      Origin: ["https://app.example.com"],
      "X-Forwarded-For": ["203.0.113.7"],
    });
    expect(call!.body).not.toContain("must not leak");
  });

  it("sends the host of HTTP/2 calls, which have no Host header", async () => {
    const t = await target("/h2");
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    await api("grpc").add(addUser());
    const [call] = targets.callsTo("/h2");
    expect(call!.json.headers.Host).toEqual([new URL(server.url).host]);
    expect(call!.json.headers["Content-Type"]).toEqual(["application/grpc+proto"]);
  });

  it("signs the body: it verifies with the target's key, and a tampered body fails", async () => {
    const t = await target("/signed");
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    await api("connect").add(addUser());
    const [call] = targets.callsTo("/signed");
    const header = call!.headers["zitadel-signature"] as string;
    expect(header).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(verifySignature(call!.body, header, t.signingKey)).toBeInstanceOf(Date);
    expect(() => verifySignature(call!.body.replace("Ada", "Eve"), header, t.signingKey)).toThrow(/no valid signature/);
    expect(() => verifySignature(call!.body, header, "x".repeat(36))).toThrow(/no valid signature/);
  });
});

describe("with curl", () => {
  it("runs request executions for plain Connect JSON calls", async () => {
    targets.route("/curl", (c) => ({ body: { ...c.json.request, username: "from-target" } }));
    const t = await target("/curl", { type: "call", interruptOnError: true });
    await server.store.setExecution(onAddRequest, [{ target: t.id }]);
    const { stdout } = await execAsync(
      `curl -s --max-time 10 -X POST ${server.url}${ADD} -H 'Content-Type: application/json' ` +
        `-d '{"profile":{"givenName":"Curl","familyName":"User"},"email":{"email":"curl@example.com"}}'`,
    );
    const { userId } = JSON.parse(stdout);
    const user = await server.client("connect").getUserByID({ userId });
    expect(user.user?.username).toBe("from-target");
  });
});
