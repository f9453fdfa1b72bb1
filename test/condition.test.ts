import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { type Condition, executionId, parseExecutionId } from "../src/condition.js";

describe("executionId", () => {
  it.each<[Condition, string]>([
    [{ type: "request", method: "/zitadel.user.v2.UserService/AddHumanUser" }, "request/zitadel.user.v2.UserService/AddHumanUser"],
    [{ type: "request", method: "zitadel.user.v2.UserService/AddHumanUser" }, "request/zitadel.user.v2.UserService/AddHumanUser"],
    [{ type: "response", service: "zitadel.user.v2.UserService" }, "response/zitadel.user.v2.UserService"],
    [{ type: "request", all: true }, "request"],
    [{ type: "response", all: true }, "response"],
    [{ type: "function", name: "preuserinfo" }, "function/preuserinfo"],
    [{ type: "event", event: "user.human.added" }, "event/user.human.added"],
    [{ type: "event", group: "user.human" }, "event/user.human.*"],
    [{ type: "event", group: "user.human.*" }, "event/user.human.*"],
    [{ type: "event", all: true }, "event"],
  ])("%j -> %s, and back", (condition, id) => {
    expect(executionId(condition)).toBe(id);
    expect(executionId(parseExecutionId(id))).toBe(id);
  });

  it.each([
    { type: "request" },
    { type: "request", method: "/a.B/C", service: "a.B" },
    { type: "request", method: "/no-slash-service" },
    { type: "request", service: "bad service" },
    { type: "request", all: false },
    { type: "function", all: true },
    { type: "function", name: "" },
    { type: "event", method: "/a.B/C" },
    { type: "event", event: "has space" },
    { type: "other", all: true },
  ])("rejects %j with InvalidArgument", (condition) => {
    expect(() => executionId(condition as unknown as Condition)).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument }) as unknown as ConnectError,
    );
  });

  it.each(["", "request/", "event/", "function", "nope/x", "request/bad service"])("rejects the ID %j", (id) => {
    expect(() => parseExecutionId(id)).toThrow(ConnectError);
  });
});
