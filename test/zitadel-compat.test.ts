// The project's protos against ZITADEL's: zitadel.action.v2beta and zitadel.user.v2 against the
// descriptors of the published @zitadel/proto package, zitadel.action.v2 against ZITADEL's v4
// descriptor in test/fixtures/zitadel (@zitadel/proto has no action/v2). Every RPC, message,
// field (number, name, JSON name, type, label, oneof), enum value and REST rule of ZITADEL's must
// be there unchanged; what the project adds must follow the extension rule of the README
// ("Extensions of ZITADEL's API"): fields numbered from 1000 to 1999, names ZITADEL does not use,
// REST paths no ZITADEL rule matches.
import { readFileSync } from "node:fs";
import { createFileRegistry, type DescFile, type DescMessage, type DescService, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { ActionService as ZitadelActionServiceV2beta } from "@zitadel/proto/zitadel/action/v2beta/action_service_pb.js";
import { UserService as ZitadelUserService } from "@zitadel/proto/zitadel/user/v2/user_service_pb.js";
import { describe, expect, it } from "vitest";
import { ActionService as ActionServiceV2 } from "../gen/zitadel/action/v2/action_service_pb.js";
import { ActionService as ActionServiceV2beta } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import { additions, apiShape, missingOrDifferent, restPathMatches, restRules } from "./helpers/api-shape.js";

const fixture = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(new URL("./fixtures/zitadel/action-v2.binpb", import.meta.url))));
const ZitadelActionServiceV2 = fixture.getService("zitadel.action.v2.ActionService")!;

/** The first and last field number of the extension range. */
const extensionRange = [1000, 1999] as const;

/** typeNamesOf returns every message and enum declared in the files (nested ones too) and their imports. */
function typeNamesOf(files: readonly DescFile[]): Set<string> {
  const names = new Set<string>();
  const seen = new Set<DescFile>();
  const visitMessage = (m: DescMessage) => {
    names.add(m.typeName);
    m.nestedEnums.forEach((e) => names.add(e.typeName));
    m.nestedMessages.forEach(visitMessage);
  };
  const visitFile = (f: DescFile) => {
    if (seen.has(f)) return;
    seen.add(f);
    f.messages.forEach(visitMessage);
    f.enums.forEach((e) => names.add(e.typeName));
    f.dependencies.forEach(visitFile);
  };
  files.forEach(visitFile);
  return names;
}

/** A concrete path for a template: every variable becomes "x1". */
const concrete = (template: string) => template.replace(/\{[^}]*\}/g, "x1");

interface ActionCase {
  readonly version: string;
  readonly zitadel: DescService;
  readonly project: DescService;
}

const actionCases: readonly ActionCase[] = [
  { version: "v2beta", zitadel: ZitadelActionServiceV2beta, project: ActionServiceV2beta },
  { version: "v2", zitadel: ZitadelActionServiceV2, project: ActionServiceV2 },
];

describe.each(actionCases.map((c) => [c.version, c] as const))("zitadel.action.%s.ActionService", (version, { zitadel, project }) => {
  const z = apiShape([zitadel]);
  const p = apiShape([project]);
  const pkg = `zitadel.action.${version}`;

  it("has every RPC, REST rule, message, field and enum value of ZITADEL's, unchanged", () => {
    expect(z.methods.size).toBeGreaterThan(9);
    expect(missingOrDifferent(z, p)).toEqual([]);
  });

  it("adds only the documented extensions", () => {
    const added = additions(z, p);
    expect(added.methods.sort()).toEqual(
      ["ExplainExecution", "ListFailedEventDeliveries", "ListTargetCalls", "RetryFailedEventDeliveries", "TestTarget"].map(
        (name) => `${pkg}.ActionService/${name}`,
      ),
    );
    expect(added.fields.map((f) => f.where).sort()).toEqual([
      `${pkg}.Execution.includes (1000)`,
      `${pkg}.ExecutionSearchFilter.include_filter (1000)`,
      `${pkg}.SetExecutionRequest.includes (1000)`,
    ]);
    expect(added.enumValues).toEqual([]);
    expect(added.types.sort()).toEqual(
      [
        "ExplainExecutionRequest",
        "ExplainExecutionResponse",
        "ExplainedLevel",
        "ExplainedTarget",
        "FailedEventDelivery",
        "IncludeFilter",
        "ListFailedEventDeliveriesRequest",
        "ListFailedEventDeliveriesResponse",
        "ListTargetCallsRequest",
        "ListTargetCallsResponse",
        "RetryFailedEventDeliveriesRequest",
        "RetryFailedEventDeliveriesResponse",
        "TargetCall",
        "TestTargetRequest",
        "TestTargetResponse",
      ].map((name) => `${pkg}.${name}`),
    );
  });

  it("numbers added fields from 1000 to 1999, a range ZITADEL's messages do not use", () => {
    for (const f of additions(z, p).fields) {
      expect(f.number, f.where).toBeGreaterThanOrEqual(extensionRange[0]);
      expect(f.number, f.where).toBeLessThanOrEqual(extensionRange[1]);
    }
    for (const [typeName, shape] of z.types) {
      if (shape.kind === "message") expect(Math.max(0, ...shape.fields.keys()), typeName).toBeLessThan(extensionRange[0]);
    }
  });

  it("gives additions names ZITADEL does not use", () => {
    const added = additions(z, p);
    const zitadelTypes = typeNamesOf([zitadel.file]);
    for (const t of added.types) expect(zitadelTypes.has(t), t).toBe(false);
    const zitadelMethods = new Set(zitadel.methods.map((m) => m.name));
    for (const m of added.methods) expect(zitadelMethods.has(m.slice(m.lastIndexOf("/") + 1)), m).toBe(false);
    for (const f of added.fields) {
      const typeName = f.where.slice(0, f.where.lastIndexOf("."));
      const message = findMessage(zitadel.file, typeName);
      expect(message, typeName).toBeDefined();
      expect(message!.fields.some((zf) => zf.name === f.name || zf.jsonName === f.name), f.where).toBe(false);
    }
  });

  it("serves extensions on REST paths that no ZITADEL rule matches, and the other way round", () => {
    const rules = (s: DescService, names?: Set<string>) =>
      s.methods
        .filter((m) => names === undefined || names.has(m.name))
        .flatMap((m) => restRules(m).map((r) => ({ method: m.name, verb: r.split(" ")[0]!, path: r.split(" ")[1]! })));
    const extensionNames = new Set(additions(z, p).methods.map((m) => m.slice(m.lastIndexOf("/") + 1)));
    const extensionRules = rules(project, extensionNames);
    expect(extensionRules).toHaveLength(5);
    for (const e of extensionRules) {
      for (const r of rules(zitadel)) {
        const clash = e.verb === r.verb && (restPathMatches(r.path, concrete(e.path)) || restPathMatches(e.path, concrete(r.path)));
        expect(clash, `${e.method} ${e.verb} ${e.path} vs ${r.method} ${r.path}`).toBe(false);
      }
    }
  });
});

/** findMessage finds a top-level message in a file or the files it imports. */
function findMessage(file: DescFile, typeName: string): DescMessage | undefined {
  return file.messages.find((m) => m.typeName === typeName) ?? file.dependencies.map((d) => findMessage(d, typeName)).find((m) => m !== undefined);
}

describe("the filters and pagination of zitadel.action.v2", () => {
  it("are zitadel.filter.v2's, as in ZITADEL v4", () => {
    const list = ActionServiceV2.method.listTargets;
    expect(list.input.field.pagination!.message!.typeName).toBe("zitadel.filter.v2.PaginationRequest");
    expect(list.output.field.pagination!.message!.typeName).toBe("zitadel.filter.v2.PaginationResponse");
    expect(ActionServiceV2beta.method.listTargets.input.field.pagination!.message!.typeName).toBe("zitadel.filter.v2beta.PaginationRequest");
  });
});

/** The sample's REST bindings that ZITADEL does not have (published guides use them). */
const userRestExtensions: Record<string, readonly string[]> = {
  "zitadel.user.v2.UserService/CreateUser": ["POST /v2/users/new body=*"],
  "zitadel.user.v2.UserService/AddHumanUser": ["PUT /v2/users/human body=*"],
};

describe("the sample zitadel.user.v2.UserService", () => {
  const served = new Set(UserService.methods.filter((m) => m.name !== "WatchUsers").map((m) => m.name));
  const z = apiShape([ZitadelUserService], (m) => served.has(m.name));
  const p = apiShape([UserService], (m) => served.has(m.name));

  it("serves RPCs of ZITADEL's UserService with ZITADEL's messages, every field as ZITADEL declares it", () => {
    expect(served).toEqual(new Set(["CreateUser", "AddHumanUser", "GetUserByID", "ListUsers", "UpdateHumanUser", "DeleteUser"]));
    expect(z.methods.size).toBe(served.size);
    const restOf = (name: string, rules: readonly string[]) => rules.filter((r) => !(userRestExtensions[name] ?? []).includes(r));
    expect(missingOrDifferent(z, p, restOf)).toEqual([]);
  });

  it("adds no field, enum value or message to what these RPCs use", () => {
    expect(additions(z, p)).toEqual({ methods: [], fields: [], enumValues: [], types: [] });
  });

  it("adds only WatchUsers (server streaming) and two REST bindings of published guides", () => {
    const all = apiShape([UserService]);
    expect([...all.methods.keys()].filter((m) => !z.methods.has(m))).toEqual(["zitadel.user.v2.UserService/WatchUsers"]);
    expect(all.methods.get("zitadel.user.v2.UserService/WatchUsers")!.kind).toBe("server_streaming");
    const zitadelTypes = typeNamesOf([ZitadelUserService.file]);
    expect(zitadelTypes.has("zitadel.user.v2.WatchUsersRequest")).toBe(false);
    expect(ZitadelUserService.methods.some((m) => m.name === "WatchUsers")).toBe(false);
    for (const [name, rules] of Object.entries(userRestExtensions)) {
      const zitadelRules = z.methods.get(name)!.rest;
      for (const rule of rules) {
        expect(p.methods.get(name)!.rest, name).toContain(rule);
        expect(zitadelRules, name).not.toContain(rule);
      }
    }
  });
});
