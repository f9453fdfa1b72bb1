// The building blocks of management per instance: the host resolver, the static token authorizer, the
// authorization interceptor and createActionService's own `authorize`, and createActions' options.
import { Code, ConnectError, createClient, createContextValues, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { afterEach, describe, expect, it } from "vitest";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { ActionService as ActionServiceV2beta } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { createHostInstanceResolver, hostNameOf } from "../src/host-instance.js";
import { silentLogger } from "../src/logger.js";
import { createActionService } from "../src/management/action-service.js";
import {
  authorizeCall,
  type ManagementAuthorizer,
  type ManagementPrincipal,
  managementPrincipalKey,
  type ManagementRequest,
} from "../src/management/authorize.js";
import { createStaticTokenAuthorizer } from "../src/management/static-token-authorizer.js";
import { listenCleartext } from "../src/sample/cleartext-server.js";
import { createActions } from "../src/setup.js";
import { createMemoryStore } from "../src/store/memory-store.js";
import { codeOf } from "../src/testing/support.js";

const request = (url: string, headers: Record<string, string> = {}): ManagementRequest => ({
  url,
  header: new Headers(headers),
  service: ActionServiceV2,
  method: ActionServiceV2.method.listTargets,
  contextValues: createContextValues(),
});

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("createHostInstanceResolver", () => {
  const resolve = createHostInstanceResolver({ hosts: { "a.example.com": "a", "B.Example.COM.": "b", "[::1]": "v6" }, fallback: "default" });

  it("finds the instance from the host name, without port, case or trailing dot", () => {
    expect(resolve(request("http://a.example.com/x"))).toBe("a");
    expect(resolve(request("http://a.example.com:8080/x"))).toBe("a");
    expect(resolve(request("https://A.EXAMPLE.com./x"))).toBe("a");
    expect(resolve(request("http://b.example.com:1/"))).toBe("b");
    expect(resolve(request("http://[::1]:8080/"))).toBe("v6");
  });

  it("gives other hosts the fallback, and refuses them with NotFound when the fallback is null", () => {
    expect(resolve(request("http://c.example.com/"))).toBe("default");
    expect(resolve(request("http://127.0.0.1:8080/"))).toBe("default");
    expect(resolve(request("not a url"))).toBe("default");
    const strict = createHostInstanceResolver({ hosts: { "a.example.com": "a" }, fallback: null });
    expect(strict(request("http://a.example.com/"))).toBe("a");
    expect(() => strict(request("http://c.example.com/"))).toThrowError(expect.objectContaining({ code: Code.NotFound }));
    // Default fallback: the default instance "".
    expect(createHostInstanceResolver({ hosts: {} })(request("http://x/"))).toBe("");
  });

  it("reads the host from a header when told to, and from the authority when the header is missing", () => {
    const behindProxy = createHostInstanceResolver({ hosts: new Map([["a.example.com", "a"]]), header: "X-Zitadel-Instance-Host" });
    expect(behindProxy(request("http://internal:8080/", { "x-zitadel-instance-host": "A.example.com:443" }))).toBe("a");
    expect(behindProxy(request("http://a.example.com/"))).toBe("a");
    expect(behindProxy(request("http://a.example.com/", { "x-zitadel-instance-host": "other.example.com" }))).toBe("");
    expect(behindProxy(request("http://a.example.com/", { "x-zitadel-instance-host": "a.example.com/evil" }))).toBe("");
    // Without the option, such a header counts for nothing.
    expect(resolve(request("http://c.example.com/", { "x-zitadel-instance-host": "a.example.com" }))).toBe("default");
  });

  it.each([
    ["a host with a port", { "a.example.com:8080": "a" }],
    ["a host with the default port", { "a.example.com:80": "a" }],
    ["a host with a path", { "a.example.com/x": "a" }],
    ["an empty host", { "": "a" }],
    ["a host given twice", { "a.example.com": "a", "A.example.com": "b" }],
    ["an invalid instance ID", { "a.example.com": "x".repeat(201) }],
  ])("refuses %s with InvalidArgument", (_, hosts) => {
    expect(() => createHostInstanceResolver({ hosts })).toThrowError(expect.objectContaining({ code: Code.InvalidArgument }));
  });

  it("normalizes authorities with hostNameOf", () => {
    expect(hostNameOf("A.Localhost:8080")).toBe("a.localhost");
    expect(hostNameOf("a.localhost.")).toBe("a.localhost");
    expect(hostNameOf("user@a.localhost")).toBeUndefined();
    expect(hostNameOf(" ")).toBeUndefined();
  });
});

describe("createStaticTokenAuthorizer", () => {
  const authorize = createStaticTokenAuthorizer({
    systemTokens: ["system-1", "system-2"],
    instanceTokens: { a: "token-a", b: ["token-b-old", "token-b-new"] },
    resolveInstance: createHostInstanceResolver({ hosts: { "a.localhost": "a", "b.localhost": "b" } }),
  });
  const as = async (token: string | undefined, host: string) =>
    authorize(request(`http://${host}:8080/`, token === undefined ? {} : { authorization: `Bearer ${token}` }));

  it("lets system tokens manage the instance of the host, and instance tokens their own instance on their own host", async () => {
    expect(await as("system-1", "a.localhost")).toEqual({ instanceId: "a", role: "system" });
    expect(await as("system-2", "b.localhost")).toEqual({ instanceId: "b", role: "system" });
    expect(await as("system-1", "localhost")).toEqual({ instanceId: "", role: "system" });
    expect(await as("token-a", "a.localhost")).toEqual({ instanceId: "a", role: "instance" });
    expect(await as("token-b-old", "b.localhost")).toEqual({ instanceId: "b", role: "instance" });
    expect(await as("token-b-new", "b.localhost")).toEqual({ instanceId: "b", role: "instance" });
  });

  it("refuses instance tokens on other hosts with PermissionDenied, and unknown tokens with Unauthenticated", async () => {
    expect(await codeOf(as("token-a", "b.localhost"))).toBe(Code.PermissionDenied);
    expect(await codeOf(as("token-a", "localhost"))).toBe(Code.PermissionDenied);
    expect(await codeOf(as("token-b-new", "a.localhost"))).toBe(Code.PermissionDenied);
    expect(await codeOf(as(undefined, "a.localhost"))).toBe(Code.Unauthenticated);
    expect(await codeOf(as("token-c", "a.localhost"))).toBe(Code.Unauthenticated);
    expect(await codeOf(as("token-a ", "a.localhost"))).toBe("resolved"); // trailing blanks are not part of a token
    expect(await codeOf(as("Token-a", "a.localhost"))).toBe(Code.Unauthenticated);
    expect(await codeOf(Promise.resolve().then(() => authorize(request("http://a.localhost/", { authorization: "Basic dG9rZW4tYQ==" }))))).toBe(
      Code.Unauthenticated,
    );
  });

  it.each([
    ["no token", {}],
    ["an empty token", { systemTokens: [" "] }],
    ["a token given twice", { systemTokens: ["same"], instanceTokens: { a: "same" } }],
    ["a token of two instances", { instanceTokens: { a: "same", b: "same" } }, true],
    ["an invalid instance ID", { instanceTokens: { ["x".repeat(201)]: "t" } }, true],
    ["instance tokens without resolveInstance", { instanceTokens: { a: "t" } }],
  ])("refuses options with %s (InvalidArgument)", (_, options, withResolver = false) => {
    const resolveInstance = withResolver ? () => "a" : undefined;
    expect(() => createStaticTokenAuthorizer({ ...options, ...(resolveInstance ? { resolveInstance } : {}) })).toThrowError(
      expect.objectContaining({ code: Code.InvalidArgument }),
    );
  });
});

describe("authorizeCall", () => {
  it("puts the principal under managementPrincipalKey", async () => {
    const req = request("http://x/");
    expect(req.contextValues.get(managementPrincipalKey)).toBeUndefined();
    await authorizeCall(() => ({ instanceId: "a", role: "instance", subject: "alice" }), req);
    expect(req.contextValues.get(managementPrincipalKey)).toEqual({ instanceId: "a", role: "instance", subject: "alice" });
  });

  it.each([
    ["throws something else than a ConnectError", () => Promise.reject(new Error("database down"))],
    ["answers no principal", () => undefined as unknown as ManagementPrincipal],
    ["answers an unknown role", () => ({ instanceId: "a", role: "admin" }) as unknown as ManagementPrincipal],
    ["answers an invalid instance ID", () => ({ instanceId: "a\u0000b", role: "system" }) as const],
  ])("fails with Internal when the authorizer %s", async (_, authorize) => {
    const req = request("http://x/");
    const error = await authorizeCall(authorize as ManagementAuthorizer, req).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.Internal);
    expect((error as ConnectError).rawMessage).not.toContain("database down");
    expect(req.contextValues.get(managementPrincipalKey)).toBeUndefined();
  });

  it("passes the authorizer's ConnectError on as it is", async () => {
    const refuse = () => {
      throw new ConnectError("no", Code.PermissionDenied);
    };
    expect(await codeOf(authorizeCall(refuse, request("http://x/")))).toBe(Code.PermissionDenied);
  });
});

describe("createActionService with authorize", () => {
  it("authorizes every RPC itself, before validating, when mounted without an interceptor", async () => {
    const store = createMemoryStore();
    const seen: ManagementRequest[] = [];
    const authorize: ManagementAuthorizer = (req) => {
      seen.push(req);
      const token = req.header.get("authorization");
      if (token === "Bearer a") return { instanceId: "a", role: "instance" };
      throw new ConnectError("who are you?", Code.Unauthenticated);
    };
    const impl = createActionService({ store, services: [], authorize });
    const handler = connectNodeAdapter({
      routes: (router) => {
        router.service(ActionServiceV2, impl);
        router.service(ActionServiceV2beta, impl);
      },
    });
    const listener = await listenCleartext(handler);
    cleanups.push(() => listener.close());
    const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${listener.port}` });
    for (const service of [ActionServiceV2, ActionServiceV2beta]) {
      const client = createClient(service, transport) as unknown as Record<string, (req: object, o?: object) => Promise<unknown>>;
      for (const method of service.methods) {
        // An empty request: invalid for most RPCs, but authorization comes first.
        expect([method.name, await codeOf(client[method.localName]!({}))]).toEqual([method.name, Code.Unauthenticated]);
      }
    }
    expect(seen.length).toBe(ActionServiceV2.methods.length + ActionServiceV2beta.methods.length);
    expect(new URL(seen[0]!.url).pathname).toBe("/zitadel.action.v2.ActionService/CreateTarget");
    const a = createClient(ActionServiceV2, transport);
    const { id } = await a.createTarget(
      { name: "t", targetType: { case: "restAsync", value: {} }, endpoint: "http://127.0.0.1:9/", timeout: { seconds: 1n } },
      { headers: { authorization: "Bearer a" } },
    );
    expect(await store.forInstance("a").getTarget(id)).toMatchObject({ instanceId: "a" });
  });

  it("refuses authorize together with instanceOf", () => {
    expect(() => createActionService({ store: createMemoryStore(), services: [], authorize: () => ({ instanceId: "", role: "system" }), instanceOf: () => "" })).toThrowError(
      expect.objectContaining({ code: Code.InvalidArgument }),
    );
  });
});

describe("createActions' authorization options", () => {
  it("refuses authorize together with tokens, and instance tokens without resolveInstance", () => {
    const authorize: ManagementAuthorizer = () => ({ instanceId: "", role: "system" });
    expect(() => createActions({ store: createMemoryStore(), logger: silentLogger, worker: false, authorize, adminTokens: "t" })).toThrowError(
      expect.objectContaining({ code: Code.InvalidArgument }),
    );
    expect(() => createActions({ store: createMemoryStore(), logger: silentLogger, worker: false, instanceTokens: { a: "t" } })).toThrowError(
      expect.objectContaining({ code: Code.InvalidArgument }),
    );
  });

  it("runs authorize first: registerManagement's interceptors see the principal, and registerManagement's authorize wins", async () => {
    const principals: (ManagementPrincipal | undefined)[] = [];
    const observe: Interceptor = (next) => (req) => {
      principals.push(req.contextValues.get(managementPrincipalKey));
      return next(req);
    };
    const actions = createActions({
      store: createMemoryStore(),
      logger: silentLogger,
      worker: false,
      authorize: () => ({ instanceId: "from-options", role: "system", subject: "options" }),
    });
    cleanups.push(() => actions.close());
    const serve = async (override?: ManagementAuthorizer) => {
      const handler = connectNodeAdapter({
        routes: (router) => actions.registerManagement(router, { interceptors: [observe], ...(override ? { authorize: override } : {}) }),
      });
      const listener = await listenCleartext(handler);
      cleanups.push(() => listener.close());
      return createClient(ActionServiceV2, createGrpcTransport({ baseUrl: `http://127.0.0.1:${listener.port}` }));
    };
    const target = { name: "t", targetType: { case: "restAsync" as const, value: {} }, endpoint: "http://127.0.0.1:9/", timeout: { seconds: 1n } };
    const { id } = await (await serve()).createTarget(target);
    expect(await actions.store.forInstance("from-options").getTarget(id)).toBeDefined();
    const { id: other } = await (await serve(() => ({ instanceId: "from-register", role: "instance" }))).createTarget(target);
    expect(await actions.store.forInstance("from-register").getTarget(other)).toBeDefined();
    expect(principals).toEqual([
      { instanceId: "from-options", role: "system", subject: "options" },
      { instanceId: "from-register", role: "instance" },
    ]);
  });
});
