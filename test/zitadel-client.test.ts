// ZITADEL's own published client code (@zitadel/proto's descriptors) against the sample server,
// over gRPC (connect-node and @grpc/grpc-js) and the Connect protocol in binary: every RPC the
// sample serves is called with ZITADEL's messages and its answer is decoded with ZITADEL's
// messages and compared field by field. zitadel.action.v2 uses ZITADEL's v4 descriptor from
// test/fixtures/zitadel, as @zitadel/proto has no action/v2.
import { generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  create,
  createFileRegistry,
  type DescMessage,
  type DescService,
  fromBinary,
  type Message,
  type MessageInitShape,
  toBinary,
} from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { ActionService as ZActionServiceV2beta } from "@zitadel/proto/zitadel/action/v2beta/action_service_pb.js";
import { ExecutionType as ZExecutionType, TargetFieldName as ZTargetFieldName } from "@zitadel/proto/zitadel/action/v2beta/query_pb.js";
import { DetailsSchema as ZDetailsSchema, ListDetailsSchema as ZListDetailsSchema, TextQueryMethod as ZTextQueryMethod } from "@zitadel/proto/zitadel/object/v2/object_pb.js";
import { TextFilterMethod as ZTextFilterMethod } from "@zitadel/proto/zitadel/filter/v2beta/filter_pb.js";
import { UserFieldName as ZUserFieldName } from "@zitadel/proto/zitadel/user/v2/query_pb.js";
import { Gender as ZGender, UserSchema as ZUserSchema, UserState as ZUserState } from "@zitadel/proto/zitadel/user/v2/user_pb.js";
import {
  AddHumanUserRequestSchema as ZAddHumanUserRequestSchema,
  UserService as ZUserService,
} from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { clearStore } from "./helpers/clear-store.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

const fixture = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(new URL("./fixtures/zitadel/action-v2.binpb", import.meta.url))));
const ZActionServiceV2 = fixture.getService("zitadel.action.v2.ActionService")!;

/** A unary call of `service`'s `method` with ZITADEL's message types; rejects with {code, message}. */
type Caller = (service: DescService, method: string, init: Record<string, unknown>, headers?: Record<string, string>) => Promise<any>;

interface CallError {
  readonly code: Code;
  readonly message: string;
}

let h: SampleHarness;
const grpcJsClients: grpc.Client[] = [];

function connectCaller(transport: () => Transport): Caller {
  return async (service, method, init, headers) => {
    const client = createClient(service, transport()) as unknown as Record<string, (i: unknown, o: unknown) => Promise<unknown>>;
    try {
      return await client[service.method[method]!.localName]!(init, { headers });
    } catch (e) {
      const error = ConnectError.from(e);
      throw { code: error.code, message: error.rawMessage } satisfies CallError;
    }
  };
}

/** grpcJsCaller sends with @grpc/grpc-js, serializing with ZITADEL's descriptors through protobuf-es. */
function grpcJsCaller(): Caller {
  let client: grpc.Client | undefined;
  return (service, method, init, headers = {}) => {
    client ??= new grpc.Client(new URL(h.server.url).host, grpc.credentials.createInsecure());
    if (!grpcJsClients.includes(client)) grpcJsClients.push(client);
    const m = service.method[method]!;
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(headers)) md.set(k, v);
    const request = create(m.input, init as MessageInitShape<DescMessage>);
    return new Promise((resolve, reject) => {
      client!.makeUnaryRequest(
        `/${service.typeName}/${m.name}`,
        (msg: Message) => Buffer.from(toBinary(m.input, msg)),
        (bytes: Buffer) => fromBinary(m.output, bytes),
        request,
        md,
        { deadline: Date.now() + 20_000 },
        (err, res) => (err ? reject({ code: err.code as number as Code, message: err.details } satisfies CallError) : resolve(res)),
      );
    });
  };
}

const callers: [string, () => Caller][] = [
  ["gRPC (connect-node)", () => connectCaller(() => createGrpcTransport({ baseUrl: h.server.url }))],
  ["Connect, binary", () => connectCaller(() => createConnectTransport({ baseUrl: h.server.url, httpVersion: "1.1", useBinaryFormat: true }))],
  ["gRPC (@grpc/grpc-js)", grpcJsCaller],
];

beforeAll(async () => {
  h = await startSampleHarness();
});
afterAll(async () => {
  for (const c of grpcJsClients) c.close();
  await h.close();
});
beforeEach(async () => {
  await clearStore(h.server.store);
});

async function failure(promise: Promise<unknown>): Promise<CallError> {
  try {
    await promise;
  } catch (e) {
    return e as CallError;
  }
  throw new Error("the call succeeded");
}

describe.each(callers)("ZITADEL's client over %s", (_, makeCaller) => {
  let call: Caller;
  beforeAll(() => {
    call = makeCaller();
  });
  const admin = () => ({ authorization: `Bearer ${h.server.adminToken}` });
  const unique = () => Math.random().toString(36).slice(2, 10);

  it("round-trips every RPC of the sample UserService, field by field", async () => {
    const u = ZUserService;
    const tag = unique();
    // CreateUser: everything the sample implements.
    const created = await call(u, "createUser", {
      organizationId: "org-z",
      userId: `c-${tag}`,
      username: `minnie-${tag}`,
      userType: {
        case: "human",
        value: {
          profile: { givenName: "Minnie", familyName: "Mouse", nickName: "Mini", displayName: "Minnie M.", preferredLanguage: "en", gender: ZGender.FEMALE },
          email: { email: `mini-${tag}@mouse.com`, verification: { case: "returnCode", value: {} } },
          phone: { phone: "+41 79 000 00 00", verification: { case: "isVerified", value: true } },
          metadata: [{ key: "k", value: new Uint8Array([1, 2]) }],
        },
      },
    });
    expect(created.$typeName).toBe("zitadel.user.v2.CreateUserResponse");
    expect(created).toEqual({
      $typeName: "zitadel.user.v2.CreateUserResponse",
      id: `c-${tag}`,
      creationDate: expect.objectContaining({ $typeName: "google.protobuf.Timestamp" }),
      emailCode: expect.stringMatching(/^\d{6}$/),
    });

    // AddHumanUser: organization is field 11, phone code returned, email verified.
    const added = await call(u, "addHumanUser", {
      userId: `a-${tag}`,
      organization: { org: { case: "orgId", value: "org-y" } },
      profile: { givenName: "Ada", familyName: "Lovelace" },
      email: { email: `ada-${tag}@example.com`, verification: { case: "isVerified", value: true } },
      phone: { phone: "+44 20 7946 0000", verification: { case: "returnCode", value: {} } },
      metadata: [{ key: "team", value: new TextEncoder().encode("engines") }],
    });
    expect(added).toEqual({
      $typeName: "zitadel.user.v2.AddHumanUserResponse",
      userId: `a-${tag}`,
      details: create(ZDetailsSchema, { sequence: 1n, resourceOwner: "org-y", changeDate: added.details.changeDate, creationDate: added.details.creationDate }),
      phoneCode: expect.stringMatching(/^\d{6}$/),
    });

    // GetUserByID: the whole User, decoded with ZITADEL's User (human is field 6 of the type oneof).
    const got = await call(u, "getUserByID", { userId: `c-${tag}` });
    const expectedUser = create(ZUserSchema, {
      userId: `c-${tag}`,
      details: { sequence: 1n, resourceOwner: "org-z", changeDate: got.user.details.changeDate, creationDate: created.creationDate },
      state: ZUserState.ACTIVE,
      username: `minnie-${tag}`,
      loginNames: [`minnie-${tag}`],
      preferredLoginName: `minnie-${tag}`,
      type: {
        case: "human",
        value: {
          profile: { givenName: "Minnie", familyName: "Mouse", nickName: "Mini", displayName: "Minnie M.", preferredLanguage: "en", gender: ZGender.FEMALE, avatarUrl: "" },
          email: { email: `mini-${tag}@mouse.com`, isVerified: false },
          phone: { phone: "+41 79 000 00 00", isVerified: true },
        },
      },
    });
    expect(got).toEqual({ $typeName: "zitadel.user.v2.GetUserByIDResponse", details: expectedUser.details, user: expectedUser });

    // ListUsers: sorting_column is field 2, queries field 3, result field 3.
    const listed = await call(u, "listUsers", {
      query: { limit: 10, asc: true },
      sortingColumn: ZUserFieldName.USER_NAME,
      queries: [
        { query: { case: "orQuery", value: { queries: [
          { query: { case: "organizationIdQuery", value: { organizationId: "org-z" } } },
          { query: { case: "emailQuery", value: { emailAddress: `ADA-${tag}@`, method: ZTextQueryMethod.STARTS_WITH_IGNORE_CASE } } },
        ] } } },
        { query: { case: "inUserIdsQuery", value: { userIds: [`a-${tag}`, `c-${tag}`] } } },
      ],
    });
    expect(listed).toEqual({
      $typeName: "zitadel.user.v2.ListUsersResponse",
      details: create(ZListDetailsSchema, { totalResult: 2n, timestamp: listed.details.timestamp }),
      sortingColumn: ZUserFieldName.USER_NAME,
      result: [expect.objectContaining({ userId: `a-${tag}`, username: `ada-${tag}@example.com` }), expectedUser],
    });

    // UpdateHumanUser: optional profile, email and phone; codes back.
    const updated = await call(u, "updateHumanUser", {
      userId: `a-${tag}`,
      username: `ada-${tag}`,
      profile: { givenName: "Augusta Ada", familyName: "King", gender: ZGender.FEMALE },
      email: { email: `augusta-${tag}@example.com`, verification: { case: "returnCode", value: {} } },
    });
    expect(updated).toEqual({
      $typeName: "zitadel.user.v2.UpdateHumanUserResponse",
      details: create(ZDetailsSchema, { sequence: 2n, resourceOwner: "org-y", changeDate: updated.details.changeDate, creationDate: added.details.creationDate }),
      emailCode: expect.stringMatching(/^\d{6}$/),
    });
    const after = (await call(u, "getUserByID", { userId: `a-${tag}` })).user;
    expect(after.username).toBe(`ada-${tag}`);
    expect(after.type.value.profile).toMatchObject({ givenName: "Augusta Ada", familyName: "King", displayName: "Augusta Ada King", preferredLanguage: "und", gender: ZGender.FEMALE });
    expect(after.type.value.email).toMatchObject({ email: `augusta-${tag}@example.com`, isVerified: false });
    expect(after.type.value.phone).toMatchObject({ phone: "+44 20 7946 0000", isVerified: false });

    // DeleteUser.
    const deleted = await call(u, "deleteUser", { userId: `a-${tag}` });
    expect(deleted.details).toMatchObject({ sequence: 3n, resourceOwner: "org-y" });
    expect((await failure(call(u, "getUserByID", { userId: `a-${tag}` }))).code).toBe(Code.NotFound);
  });

  it("answers fields the sample does not implement with Unimplemented naming the field, and unknown fields with InvalidArgument", async () => {
    const u = ZUserService;
    const human = () => ({ profile: { givenName: "X", familyName: "Y" }, email: { email: `x-${unique()}@example.com` } });
    const cases: [string, Record<string, unknown>, string][] = [
      ["addHumanUser", { ...human(), passwordType: { case: "password", value: { password: "Secret1!" } } }, "password"],
      ["addHumanUser", { ...human(), passwordType: { case: "hashedPassword", value: { hash: "$2a$..." } } }, "hashed_password"],
      ["addHumanUser", { ...human(), idpLinks: [{ idpId: "i", userId: "u", userName: "n" }] }, "idp_links"],
      ["addHumanUser", { ...human(), totpSecret: "JBSWY3DPEHPK3PXP" }, "totp_secret"],
      ["addHumanUser", { ...human(), email: { email: "s@example.com", verification: { case: "sendCode", value: {} } } }, "email.send_code"],
      ["addHumanUser", { ...human(), phone: { phone: "+41790000000", verification: { case: "sendCode", value: {} } } }, "phone.send_code"],
      ["addHumanUser", { ...human(), organization: { org: { case: "orgDomain", value: "example.com" } } }, "organization.org_domain"],
      ["createUser", { organizationId: "o", userType: { case: "machine", value: { name: "robot" } } }, "machine"],
      ["createUser", { organizationId: "o", userType: { case: "human", value: { ...human(), totpSecret: "x" } } }, "human.totp_secret"],
      ["updateHumanUser", { userId: "any", password: { passwordType: { case: "password", value: { password: "x" } } } }, "password"],
    ];
    for (const [method, init, field] of cases) {
      const error = await failure(call(u, method, init));
      expect(error.code, `${method} ${field}`).toBe(Code.Unimplemented);
      expect(error.message, `${method} ${field}`).toMatch(new RegExp(`^${field.replace(".", "\\.")} is not implemented`));
    }
    // A field the sample's protos do not declare (a newer client): InvalidArgument, not silence.
    const withUnknown = create(ZAddHumanUserRequestSchema, human());
    withUnknown.$unknown = [{ no: 999, wireType: 0, data: new Uint8Array([1]) }];
    const error = await failure(call(u, "addHumanUser", withUnknown as unknown as Record<string, unknown>));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.message).toMatch(/field number 999/);
  });

  it("round-trips every RPC of the ActionService v2beta", async () => {
    const a = ZActionServiceV2beta;
    const name = `t-${unique()}`;
    const created = await call(a, "createTarget", { name, targetType: { case: "restCall", value: { interruptOnError: true } }, endpoint: h.targets.endpoint("/z"), timeout: { seconds: 7n } }, admin());
    expect(created).toEqual({ $typeName: "zitadel.action.v2beta.CreateTargetResponse", id: expect.stringMatching(/^\d+$/), creationDate: expect.anything(), signingKey: expect.stringMatching(/^[A-Za-z0-9]{36}$/) });
    const updated = await call(a, "updateTarget", { id: created.id, name: `${name}-2`, expirationSigningKey: { seconds: 0n } }, admin());
    expect(updated).toEqual({ $typeName: "zitadel.action.v2beta.UpdateTargetResponse", changeDate: expect.anything(), signingKey: expect.stringMatching(/^[A-Za-z0-9]{36}$/) });
    const got = await call(a, "getTarget", { id: created.id }, admin());
    expect(got.target).toEqual({
      $typeName: "zitadel.action.v2beta.Target",
      id: created.id,
      creationDate: created.creationDate,
      changeDate: updated.changeDate,
      name: `${name}-2`,
      targetType: { case: "restCall", value: { $typeName: "zitadel.action.v2beta.RESTCall", interruptOnError: true } },
      timeout: { $typeName: "google.protobuf.Duration", seconds: 7n, nanos: 0 },
      endpoint: h.targets.endpoint("/z"),
      signingKey: updated.signingKey,
    });
    const list = await call(a, "listTargets", {
      pagination: { limit: 5, asc: true },
      sortingColumn: ZTargetFieldName.NAME,
      filters: [{ filter: { case: "targetNameFilter", value: { targetName: name, method: ZTextFilterMethod.STARTS_WITH } } }],
    }, admin());
    expect(list).toEqual({ $typeName: "zitadel.action.v2beta.ListTargetsResponse", pagination: { $typeName: "zitadel.filter.v2beta.PaginationResponse", totalResult: 1n, appliedLimit: 5n }, targets: [got.target] });
    const condition = { conditionType: { case: "request", value: { condition: { case: "method", value: "/zitadel.user.v2.UserService/GetUserByID" } } } };
    const set = await call(a, "setExecution", { condition, targets: [created.id] }, admin());
    expect(set).toEqual({ $typeName: "zitadel.action.v2beta.SetExecutionResponse", setDate: expect.anything() });
    const executions = await call(a, "listExecutions", { filters: [{ filter: { case: "executionTypeFilter", value: { executionType: ZExecutionType.REQUEST } } }] }, admin());
    expect(executions.pagination).toEqual({ $typeName: "zitadel.filter.v2beta.PaginationResponse", totalResult: 1n, appliedLimit: 100n });
    expect(executions.executions).toEqual([
      { $typeName: "zitadel.action.v2beta.Execution", condition: create(a.method.setExecution.input.field.condition!.message!, condition as never), creationDate: expect.anything(), changeDate: expect.anything(), targets: [created.id] },
    ]);
    expect((await call(a, "listExecutionFunctions", {}, admin())).functions).toEqual(["preuserinfo", "preaccesstoken", "presamlresponse"]);
    expect((await call(a, "listExecutionMethods", {}, admin())).methods).toContain("/zitadel.user.v2.UserService/AddHumanUser");
    expect((await call(a, "listExecutionServices", {}, admin())).services).toContain("zitadel.user.v2.UserService");
    expect((await call(a, "setExecution", { condition, targets: [] }, admin())).setDate).toBeDefined();
    expect((await call(a, "deleteTarget", { id: created.id }, admin())).deletionDate).toBeDefined();
  });

  it("round-trips every RPC of the ActionService v2 (ZITADEL v4's descriptor), payload types and public keys included", async () => {
    const a = ZActionServiceV2;
    const created = await call(a, "createTarget", { name: `v2-${unique()}`, targetType: { case: "restWebhook", value: {} }, endpoint: h.targets.endpoint("/v2"), timeout: { seconds: 3n }, payloadType: 3 }, admin());
    const got = await call(a, "getTarget", { id: created.id }, admin());
    expect(got.target.$typeName).toBe("zitadel.action.v2.Target");
    expect(got.target).toMatchObject({ id: created.id, payloadType: 3, targetType: { case: "restWebhook" }, timeout: { seconds: 3n } });
    expect((await call(a, "updateTarget", { id: created.id, payloadType: 2 }, admin())).changeDate).toBeDefined();
    expect((await call(a, "getTarget", { id: created.id }, admin())).target.payloadType).toBe(2);
    const list = await call(a, "listTargets", { pagination: { limit: 1 }, filters: [{ filter: { case: "inTargetIdsFilter", value: { targetIds: [created.id] } } }] }, admin());
    expect(list.pagination).toEqual(expect.objectContaining({ $typeName: "zitadel.filter.v2.PaginationResponse", totalResult: 1n, appliedLimit: 1n }));
    expect(list.targets.map((t: { id: string }) => t.id)).toEqual([created.id]);
    // Public keys, field by field.
    const pem = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "pem" }) as string;
    const expires = { seconds: BigInt(Math.floor(Date.now() / 1000) + 3600), nanos: 0 };
    const added = await call(a, "addPublicKey", { targetId: created.id, publicKey: new TextEncoder().encode(pem), expirationDate: expires }, admin());
    expect(added).toEqual({ $typeName: "zitadel.action.v2.AddPublicKeyResponse", keyId: expect.stringMatching(/^\d+$/), creationDate: expect.anything() });
    const activated = await call(a, "activatePublicKey", { targetId: created.id, keyId: added.keyId }, admin());
    expect(activated).toEqual({ $typeName: "zitadel.action.v2.ActivatePublicKeyResponse", changeDate: expect.anything() });
    const keys = await call(a, "listPublicKeys", { targetId: created.id, pagination: { limit: 10 }, sortingColumn: 3, filters: [{ filter: { case: "activeFilter", value: true } }] }, admin());
    expect(keys).toEqual({
      $typeName: "zitadel.action.v2.ListPublicKeysResponse",
      pagination: { $typeName: "zitadel.filter.v2.PaginationResponse", totalResult: 1n, appliedLimit: 10n },
      publicKeys: [
        {
          $typeName: "zitadel.action.v2.PublicKey",
          keyId: added.keyId,
          active: true,
          publicKey: expect.any(Uint8Array), // a Buffer with @grpc/grpc-js
          fingerprint: expect.stringMatching(/^SHA256:[A-Za-z0-9+/]{43}$/),
          expirationDate: { $typeName: "google.protobuf.Timestamp", ...expires },
          creationDate: added.creationDate,
          changeDate: activated.changeDate,
        },
      ],
    });
    expect(new TextDecoder().decode(keys.publicKeys[0].publicKey)).toBe(pem);
    expect(await failure(call(a, "removePublicKey", { targetId: created.id, keyId: added.keyId }, admin()))).toMatchObject({ code: Code.FailedPrecondition });
    const deactivated = await call(a, "deactivatePublicKey", { targetId: created.id, keyId: added.keyId }, admin());
    expect(deactivated).toEqual({ $typeName: "zitadel.action.v2.DeactivatePublicKeyResponse", changeDate: expect.anything() });
    const removed = await call(a, "removePublicKey", { targetId: created.id, keyId: added.keyId }, admin());
    expect(removed).toEqual({ $typeName: "zitadel.action.v2.RemovePublicKeyResponse", deletionDate: expect.anything() });
    expect((await call(a, "listPublicKeys", { targetId: created.id }, admin())).publicKeys).toEqual([]);
    const condition = { conditionType: { case: "event", value: { condition: { case: "event", value: "user.human.added" } } } };
    expect((await call(a, "setExecution", { condition, targets: [created.id] }, admin())).setDate).toBeDefined();
    const executions = await call(a, "listExecutions", { filters: [{ filter: { case: "targetFilter", value: { targetId: created.id } } }] }, admin());
    expect(executions.executions.map((e: { targets: string[] }) => e.targets)).toEqual([[created.id]]);
    expect((await call(a, "deleteTarget", { id: created.id }, admin())).deletionDate).toBeDefined();
  });
});
