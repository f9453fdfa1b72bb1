import { Code, ConnectError } from "@connectrpc/connect";

/**
 * ExecutionType is what triggers an execution: a unary RPC before its handler
 * ("request"), a unary RPC before its reply ("response"), a named function
 * ("function") or a stored event ("event").
 */
export type ExecutionType = "request" | "response" | "function" | "event";

/**
 * Condition selects when an execution runs. It mirrors ZITADEL's
 * `Condition{request|response{method|service|all}, function{name},
 * event{event|group|all}}`.
 *
 * - `method` is a full method name, "/pkg.Service/Method".
 * - `service` is a fully qualified service name, "pkg.Service".
 * - `group` is an event type prefix, "user.human" (stored as "user.human.*").
 */
export type Condition =
  | { readonly type: "request" | "response"; readonly method: string }
  | { readonly type: "request" | "response"; readonly service: string }
  | { readonly type: "request" | "response"; readonly all: true }
  | { readonly type: "function"; readonly name: string }
  | { readonly type: "event"; readonly event: string }
  | { readonly type: "event"; readonly group: string }
  | { readonly type: "event"; readonly all: true };

const methodPattern = /^\/[A-Za-z_][\w.]*\/[A-Za-z_]\w*$/;
const servicePattern = /^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*$/;
const eventPattern = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const functionPattern = /^[A-Za-z0-9_.-]+$/;

/**
 * executionId returns the ID ZITADEL gives the execution of a condition: the
 * type, then "/" and the value ("request/zitadel.user.v2.UserService/AddHumanUser",
 * "request/zitadel.user.v2.UserService", "function/preuserinfo",
 * "event/user.human.added"), the bare type for `all` ("request", "event"), and
 * the suffix ".*" for an event group ("event/user.human.*").
 *
 * Throws a ConnectError with Code.InvalidArgument when the condition is malformed.
 */
export function executionId(condition: Condition): string {
  const c = validateCondition(condition);
  if ("all" in c) {
    return c.type;
  }
  if ("method" in c) {
    return c.type + c.method;
  }
  if ("service" in c) {
    return `${c.type}/${c.service}`;
  }
  if ("name" in c) {
    return `function/${c.name}`;
  }
  if ("group" in c) {
    return `event/${c.group}.*`;
  }
  return `event/${c.event}`;
}

/**
 * parseExecutionId turns an execution ID (see executionId) back into its
 * Condition. Throws a ConnectError with Code.InvalidArgument for an ID that no
 * condition produces.
 */
export function parseExecutionId(id: string): Condition {
  const slash = id.indexOf("/");
  const type = slash < 0 ? id : id.slice(0, slash);
  const value = slash < 0 ? "" : id.slice(slash + 1);
  let condition: Condition | undefined;
  switch (type) {
    case "request":
    case "response":
      if (value === "") {
        condition = slash < 0 ? { type, all: true } : undefined;
      } else if (value.includes("/")) {
        condition = { type, method: "/" + value };
      } else {
        condition = { type, service: value };
      }
      break;
    case "event":
      if (value === "") {
        condition = slash < 0 ? { type, all: true } : undefined;
      } else if (value.endsWith(".*")) {
        condition = { type, group: value.slice(0, -2) };
      } else {
        condition = { type, event: value };
      }
      break;
    case "function":
      condition = value === "" ? undefined : { type, name: value };
      break;
  }
  if (condition === undefined) {
    throw new ConnectError(`invalid execution ID "${id}"`, Code.InvalidArgument);
  }
  validateCondition(condition);
  return condition;
}

/**
 * validateCondition checks that a condition has exactly one well-formed
 * selector and returns it normalized: a method gets its leading "/", a group
 * loses a trailing ".*" or ".". Throws a ConnectError with Code.InvalidArgument
 * otherwise. It does not check that the method, service, event or function
 * exists; the ActionService does that against what the server serves.
 */
export function validateCondition(condition: Condition): Condition {
  const c = condition as Partial<Record<"method" | "service" | "name" | "event" | "group" | "all", unknown>> & {
    type?: unknown;
  };
  const selectors = (["method", "service", "name", "event", "group", "all"] as const).filter(
    (k) => c[k] !== undefined && c[k] !== false,
  );
  const fail = (why: string): never => {
    throw new ConnectError(`invalid condition: ${why}`, Code.InvalidArgument);
  };
  if (selectors.length !== 1) {
    fail(`exactly one of method, service, all, name, event or group must be set, got ${selectors.length}`);
  }
  const selector = selectors[0]!;
  const value = c[selector];
  if (selector === "all") {
    if (value !== true) fail("all must be true");
    if (c.type !== "request" && c.type !== "response" && c.type !== "event") {
      fail(`"all" is not a selector of ${String(c.type)} conditions`);
    }
    return { type: c.type as "request", all: true };
  }
  if (typeof value !== "string" || value === "") {
    return fail(`${selector} must be a non-empty string`);
  }
  if (value.length > 1000) fail(`${selector} is longer than 1000 characters`);
  switch (c.type) {
    case "request":
    case "response":
      if (selector === "method") {
        const method = value.startsWith("/") ? value : "/" + value;
        if (!methodPattern.test(method)) fail(`method "${value}" is not of the form "/pkg.Service/Method"`);
        return { type: c.type, method };
      }
      if (selector === "service") {
        if (!servicePattern.test(value)) fail(`service "${value}" is not of the form "pkg.Service"`);
        return { type: c.type, service: value };
      }
      break;
    case "function":
      if (selector === "name") {
        if (!functionPattern.test(value)) fail(`function name "${value}" has characters other than letters, digits, "_", "-" and "."`);
        return { type: "function", name: value };
      }
      break;
    case "event":
      if (selector === "event") {
        if (!eventPattern.test(value)) fail(`event "${value}" is not of the form "aggregate.event.type"`);
        return { type: "event", event: value };
      }
      if (selector === "group") {
        const group = value.replace(/\.?\*$/, "").replace(/\.$/, "");
        if (!eventPattern.test(group)) fail(`event group "${value}" is not of the form "aggregate.prefix"`);
        return { type: "event", group };
      }
      break;
    default:
      fail(`unknown condition type "${String(c.type)}"`);
  }
  return fail(`${selector} is not a selector of ${String(c.type)} conditions`);
}

/**
 * executionTypeOf returns the type of an execution ID: the part before the first "/".
 */
export function executionTypeOf(id: string): ExecutionType {
  const slash = id.indexOf("/");
  return (slash < 0 ? id : id.slice(0, slash)) as ExecutionType;
}
