// Conditions of executions, as the ActionService's JSON has them:
//   { request: { method | service | all } }, { response: { method | service | all } },
//   { event: { event | group | all } }, { function: { name } }.

/** The execution types, in the order the console shows them. */
export const executionTypes = [
  { key: "request", label: "Request", enumValue: "EXECUTION_TYPE_REQUEST", help: "before the handler of a unary RPC runs" },
  { key: "response", label: "Response", enumValue: "EXECUTION_TYPE_RESPONSE", help: "before the reply of a unary RPC is sent" },
  { key: "event", label: "Event", enumValue: "EXECUTION_TYPE_EVENT", help: "after an event is stored, delivered by the event worker" },
  { key: "function", label: "Function", enumValue: "EXECUTION_TYPE_FUNCTION", help: "when a named hook (token or SAML customization) runs" },
];

/**
 * describe returns { type, kind, value } of a condition: kind is "method", "service", "all", "event",
 * "group" or "function"; value is "" for "all".
 * @param {any} condition
 */
export function describe(condition) {
  for (const type of ["request", "response"]) {
    const c = condition?.[type];
    if (c === undefined) continue;
    if (c.method) return { type, kind: "method", value: c.method };
    if (c.service) return { type, kind: "service", value: c.service };
    return { type, kind: "all", value: "" };
  }
  const event = condition?.event;
  if (event !== undefined) {
    if (event.event) return { type: "event", kind: "event", value: event.event };
    if (event.group) return { type: "event", kind: "group", value: event.group };
    return { type: "event", kind: "all", value: "" };
  }
  if (condition?.function !== undefined) return { type: "function", kind: "function", value: condition.function.name ?? "" };
  return { type: "unknown", kind: "unknown", value: JSON.stringify(condition) };
}

/**
 * make builds a condition from its type, kind and value (see describe).
 * @param {string} type
 * @param {string} kind
 * @param {string} value
 */
export function make(type, kind, value) {
  if (type === "function") return { function: { name: value } };
  return { [type]: kind === "all" ? { all: true } : { [kind]: value } };
}

/**
 * executionId is the ID the ActionService gives the execution of a condition (the delivery log's
 * execution ID): "request/pkg.Service/Method", "request/pkg.Service", "request" (all), "event/user.added",
 * "event/user.*" (group), "event" (all), "function/preuserinfo".
 * @param {any} condition
 */
export function executionId(condition) {
  const { type, kind, value } = describe(condition);
  if (kind === "all") return type;
  if (kind === "method") return type + value;
  if (kind === "group") return `${type}/${value}.*`;
  return `${type}/${value}`;
}

/**
 * label is a short text for a condition: "/pkg.Service/Method", "pkg.Service", "all", "user.human.*".
 * @param {any} condition
 */
export function label(condition) {
  const { kind, value } = describe(condition);
  if (kind === "all") return "all";
  if (kind === "group") return `${value}.*`;
  return value;
}

/**
 * kindLabel names the kind of a condition for people.
 * @param {string} kind
 */
export function kindLabel(kind) {
  return { method: "method", service: "service", all: "all", event: "event", group: "event group", function: "function" }[kind] ?? kind;
}
