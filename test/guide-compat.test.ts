import type { DescMethod, JsonObject } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActionService } from "../gen/zitadel/action/v2beta/action_service_pb.js";
import { UserService } from "../gen/zitadel/user/v2/user_service_pb.js";
import type { Logger } from "../src/logger.js";
import { createGuideCompatAdapters, createProfileUnderUserIdAdapter } from "../src/sample/guide-compat.js";

const method = (service: { methods: readonly DescMethod[] }, name: string) => service.methods.find((m) => m.name === name)!;
const addHumanUser = method(UserService, "AddHumanUser");
const profile = { givenName: "G", familyName: "F" };
const email = { email: "e@example.com" };

function recordingLogger() {
  const warnings: { message: string; attributes?: Record<string, unknown> }[] = [];
  const logger: Logger = { debug: () => {}, info: () => {}, warn: (message, attributes) => void warnings.push({ message, attributes }), error: () => {} };
  return { logger, warnings };
}

describe("createProfileUnderUserIdAdapter", () => {
  it("moves an object userId without a profile to profile and warns once", () => {
    const { logger, warnings } = recordingLogger();
    const adapt = createProfileUnderUserIdAdapter(logger);
    expect(adapt(addHumanUser, { userId: profile, email })).toEqual({ profile, email });
    expect(adapt(addHumanUser, { user_id: profile, email })).toEqual({ profile, email });
    expect(warnings).toEqual([
      {
        message: "accepted the profile under userId, a known typo of the Test Actions Response guide",
        attributes: { rpc: "zitadel.user.v2.UserService/AddHumanUser" },
      },
      {
        message: "accepted the profile under userId, a known typo of the Test Actions Response guide",
        attributes: { rpc: "zitadel.user.v2.UserService/AddHumanUser" },
      },
    ]);
  });

  it("leaves well-formed and other malformed requests, and other methods, unchanged", () => {
    const { logger, warnings } = recordingLogger();
    const adapt = createProfileUnderUserIdAdapter(logger);
    const unchanged: JsonObject[] = [
      { userId: "my-id", profile, email },
      { userId: profile, profile, email },
      { userId: profile, profile: null, email },
      { userId: [profile], email },
      { userId: null, email },
      { profile, email },
    ];
    for (const json of unchanged) {
      expect(adapt(addHumanUser, json), JSON.stringify(json)).toBe(json);
    }
    const update = { userId: profile };
    expect(adapt(method(UserService, "UpdateHumanUser"), update)).toBe(update);
    expect(warnings).toEqual([]);
  });
});

describe("createGuideCompatAdapters", () => {
  it("adapts SetExecution targets and the AddHumanUser typo, in order", () => {
    const { logger } = recordingLogger();
    const adapters = createGuideCompatAdapters(logger);
    const run = (m: DescMethod, json: Parameters<(typeof adapters)[number]>[1]) => adapters.reduce((j, a) => a(m, j), json);
    expect(run(method(ActionService, "SetExecution"), { targets: [{ target: "1" }] })).toEqual({ targets: ["1"] });
    expect(run(addHumanUser, { userId: profile, email })).toEqual({ profile, email });
  });
});
