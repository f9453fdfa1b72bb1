// The condition picker of the console's forms: choose a condition of one execution type, fed by the
// ListExecution* calls (methods, services, functions) and, for events, by the event types the
// ActionService has seen in executions and given-up deliveries (no RPC lists event types).
import { h } from "./dom.js";
import { make } from "./conditions.js";

/**
 * loadConditionChoices asks the ActionService for what a picker of the type offers:
 * { methods, services } for "request" and "response", { functions } for "function", { events } for "event".
 * @param {any} api
 * @param {string} typeKey "request", "response", "event" or "function"
 */
export async function loadConditionChoices(api, typeKey) {
  if (typeKey === "request" || typeKey === "response") {
    const [methods, services] = await Promise.all([api.listExecutionMethods(), api.listExecutionServices()]);
    return { methods, services };
  }
  if (typeKey === "function") return { functions: await api.listExecutionFunctions() };
  const [all, failed] = await Promise.all([api.listExecutions("EXECUTION_TYPE_EVENT"), api.listFailedEventDeliveries(100).catch(() => [])]);
  const events = new Set();
  for (const e of all) if (e.condition?.event?.event) events.add(e.condition.event.event);
  for (const f of failed) if (f.eventType) events.add(f.eventType);
  return { events: [...events].sort() };
}

/**
 * conditionPicker chooses a condition of one type. With `concrete`, only the most specific kind is
 * offered (a method, an event type, a function), as a test payload needs. `initial` preselects a
 * condition of the type (as the ActionService's JSON has it). Returns { el, condition(), onChange(f) };
 * condition() is undefined while the chosen kind has no value.
 * @param {string} typeKey
 * @param {any} choices what loadConditionChoices resolved for the type
 * @param {{ concrete?: boolean, initial?: any }} [options]
 */
export function conditionPicker(typeKey, choices, options = {}) {
  const listeners = [];
  const changed = () => listeners.forEach((f) => f());
  let kinds =
    typeKey === "event"
      ? [
          { key: "event", text: "Event type" },
          { key: "group", text: "Event group" },
          { key: "all", text: "All events" },
        ]
      : typeKey === "function"
        ? [{ key: "function", text: "Function" }]
        : [
            { key: "method", text: "Method" },
            { key: "service", text: "Service" },
            { key: "all", text: "All" },
          ];
  if (options.concrete) kinds = kinds.slice(0, 1);
  const initial = options.initial?.[typeKey === "function" ? "function" : typeKey];
  const initialKind = initial === undefined ? kinds[0].key : kinds.find((k) => (k.key === "function" ? "name" : k.key) in initial)?.key ?? kinds[0].key;
  const initialValue = initial === undefined ? "" : String(initial[initialKind === "function" ? "name" : initialKind] ?? "");
  const group = `kind-${Math.random().toString(36).slice(2, 8)}`;
  const radios = kinds.map((k) => h("input", { type: "radio", name: group, value: k.key, checked: k.key === initialKind }));
  const controls = new Map();
  let suggestions = null;
  if (typeKey === "request" || typeKey === "response") {
    const byService = new Map();
    for (const m of choices.methods) {
      const service = m.slice(1, m.lastIndexOf("/"));
      if (!byService.has(service)) byService.set(service, []);
      byService.get(service).push(m);
    }
    controls.set(
      "method",
      h(
        "select",
        { name: "method", "aria-label": "Method name" },
        [...byService].map(([service, methods]) => h("optgroup", { label: service }, methods.map((m) => h("option", { value: m, text: m })))),
      ),
    );
    controls.set("service", h("select", { name: "service", "aria-label": "Service name" }, choices.services.map((s) => h("option", { value: s, text: s }))));
  } else if (typeKey === "event") {
    const listId = `${group}-events`;
    controls.set("event", h("input", { type: "text", name: "event", list: listId, placeholder: "user.human.added", "aria-label": "Event type name", autocomplete: "off" }));
    suggestions = h("datalist", { id: listId }, choices.events.map((e) => h("option", { value: e })));
    controls.set("group", h("input", { type: "text", name: "group", placeholder: "user.human", "aria-label": "Event group name", autocomplete: "off" }));
  } else {
    controls.set("function", h("select", { name: "function", "aria-label": "Function name" }, choices.functions.map((f) => h("option", { value: f, text: f }))));
  }
  for (const k of kinds) if (!controls.has(k.key) && k.key !== "all") throw new Error(`no control for ${k.key}`);
  for (const key of [...controls.keys()]) if (!kinds.some((k) => k.key === key)) controls.delete(key);
  if (initialValue !== "" && controls.has(initialKind)) controls.get(initialKind).value = initialValue;
  const valueOf = (kind) => controls.get(kind)?.value.trim() ?? "";
  const kindNow = () => radios.find((r) => r.checked)?.value ?? kinds[0].key;
  const sync = () => {
    for (const [kind, control] of controls) control.hidden = kind !== kindNow();
    changed();
  };
  for (const r of radios) r.addEventListener("change", sync);
  for (const control of controls.values()) {
    control.addEventListener("change", changed);
    control.addEventListener("input", changed);
  }
  const el = h(
    "div",
    { class: "condition-picker" },
    kinds.length > 1 ? h("div", { class: "radio-row", role: "radiogroup", "aria-label": "Kind of condition" }, kinds.map((k, i) => h("label", { class: "radio" }, radios[i], ` ${k.text}`))) : null,
    [...controls.values()].map((c) => h("div", { class: "picker-control" }, c)),
    suggestions,
  );
  sync();
  return {
    el,
    condition() {
      const kind = kindNow();
      const value = valueOf(kind);
      if (kind !== "all" && value === "") return undefined;
      return make(typeKey, kind, value);
    },
    onChange(f) {
      listeners.push(f);
    },
  };
}
