// Executions: which targets run under which condition, by type (request, response, event, function).
// Set or replace an execution's ordered targets and includes; delete it by setting an empty list.
//
// Extension point (issue 11): the best-match preview (ExplainExecution: for a method, service, event or
// function, the execution that matches, its targets in order with includes expanded, and the levels it
// beat) goes into `previewSlot` below, as a form that asks the api client once it has explainExecution.
import { badge, breakable, button, formatDateTime, h, replace } from "../dom.js";
import { describe, executionId, executionTypes, kindLabel, label, make } from "../conditions.js";
import { confirmAction, emptyState, errorText, openDialog, pageHeader, setBusy, table, toast } from "../ui.js";
import { typeOf } from "./targets.js";

/**
 * executionsPage is the page of executions; the route's rest is the type ("#/executions/event").
 */
export const executionsPage = {
  /**
   * @param {HTMLElement} container
   * @param {{ api: any, rest: string, navigate: (hash: string) => void }} context
   */
  mount(container, context) {
    const { api } = context;
    const type = executionTypes.find((t) => t.key === context.rest) ?? executionTypes[0];
    const list = h("section", { class: "panel", "aria-label": `${type.label} executions` });
    const tabs = h(
      "div",
      { class: "tabs", role: "tablist", "aria-label": "Execution type" },
      executionTypes.map((t) =>
        h("a", {
          href: `#/executions/${t.key}`,
          role: "tab",
          class: ["tab", t === type ? "active" : ""],
          "aria-selected": t === type ? "true" : "false",
          text: t.label,
        }),
      ),
    );
    // Extension point (issue 11): the ExplainExecution preview is rendered into this element.
    const previewSlot = h("div", { class: "preview-slot", hidden: true });
    replace(
      container,
      pageHeader("Executions", `Which targets run, in order, for each condition. Only the best match runs: method, else service, else all.`, [
        button("Set execution", () => edit(undefined), { kind: "primary" }),
      ]),
      tabs,
      h("p", { class: "tab-help", text: `${type.label} executions run ${type.help}.` }),
      previewSlot,
      list,
    );

    /** @type {any[]} */
    let targets = [];
    /** @type {any[]} */
    let executions = [];

    async function load() {
      try {
        [targets, executions] = await Promise.all([api.listTargets(), api.listExecutions(type.enumValue)]);
        executions.sort((a, b) => executionId(a.condition).localeCompare(executionId(b.condition)));
        if (executions.length === 0) {
          replace(list, emptyState(`No ${type.label.toLowerCase()} executions.`, "Set one to call targets under a condition."));
          return;
        }
        replace(
          list,
          table(
            ["Condition", "Targets, in order", "Includes", "Changed", ""],
            executions.map((e) => [
              conditionCell(e.condition),
              targetList(e.targets ?? []),
              (e.includes ?? []).length === 0
                ? h("span", { class: "muted", text: "—" })
                : h("ol", { class: "chips" }, e.includes.map((c) => h("li", { class: "chip mono" }, breakable(label(c))))),
              h("span", { class: "nowrap", text: formatDateTime(e.changeDate) }),
              h("div", { class: "row-actions" }, [
                button("Calls", () => context.navigate(`#/deliveries?condition=${encodeURIComponent(executionId(e.condition))}`), {
                  small: true,
                  kind: "ghost",
                  title: "Delivery log of this execution",
                }),
                button("Edit", () => edit(e), { small: true }),
                button("Delete", () => remove(e), { small: true, kind: "danger" }),
              ]),
            ]),
            (i) => ({ dataset: { executionId: executionId(executions[i].condition) } }),
          ),
        );
      } catch (e) {
        replace(list, emptyState("The executions could not be loaded.", errorText(e)));
      }
    }

    function conditionCell(condition) {
      const d = describe(condition);
      return h("div", { class: "condition" }, badge(kindLabel(d.kind)), d.kind === "all" ? null : h("span", { class: "mono" }, breakable(label(condition))));
    }

    function targetName(id) {
      return targets.find((t) => t.id === id)?.name;
    }

    function targetList(ids) {
      if (ids.length === 0) return h("span", { class: "muted", text: "—" });
      return h(
        "ol",
        { class: "chips" },
        ids.map((id) => {
          const name = targetName(id);
          return h("li", { class: ["chip", name ? "" : "chip-missing"], title: id, text: name ?? id });
        }),
      );
    }

    /** edit opens the editor of a new execution (undefined) or of an existing one. */
    async function edit(execution) {
      let choices;
      try {
        choices = await loadChoices();
      } catch (e) {
        toast(`The choices could not be loaded: ${errorText(e)}`, "error");
        return;
      }
      const picker = execution ? fixedCondition(execution.condition) : conditionPicker(choices);
      /** @type {string[]} */
      const chosenTargets = [...(execution?.targets ?? [])];
      /** @type {any[]} */
      const chosenIncludes = [...(execution?.includes ?? [])];

      const targetsList = h("ol", { class: "ordered", "aria-label": "Targets, in order" });
      const targetSelect = h("select", { "aria-label": "Target to add" });
      const includesList = h("ol", { class: "ordered", "aria-label": "Includes, in order" });
      const includeSelect = h("select", { "aria-label": "Execution to include" });

      const renderLists = () => {
        // Rebuilding the choices keeps what is selected in them (a blur of the condition field re-renders too).
        const pickedTarget = targetSelect.value;
        const pickedInclude = includeSelect.value;
        renderOrdered(targetsList, chosenTargets, (id) => {
          const t = targets.find((x) => x.id === id);
          return [h("span", { class: "ordered-name", text: t?.name ?? id }), t ? badge(typeOf(t).name, "info") : badge("missing", "bad")];
        }, renderLists, "target");
        replace(
          targetSelect,
          h("option", { value: "", text: targets.length === 0 ? "No targets: create one first" : "Add a target…" }),
          targets.filter((t) => !chosenTargets.includes(t.id)).map((t) => h("option", { value: t.id, text: `${t.name} (${typeOf(t).name})` })),
        );
        renderOrdered(includesList, chosenIncludes, (c) => [h("span", { class: "ordered-name mono", text: label(c) }), badge(kindLabel(describe(c).kind))], renderLists, "include");
        const self = picker.condition();
        const selfId = self ? executionId(self) : "";
        const chosenIds = chosenIncludes.map(executionId);
        const includable = executions.filter((e) => executionId(e.condition) !== selfId && !chosenIds.includes(executionId(e.condition)));
        replace(
          includeSelect,
          h("option", { value: "", text: includable.length === 0 ? `No other ${type.label.toLowerCase()} executions` : "Include an execution…" }),
          includable.map((e) => h("option", { value: executionId(e.condition), text: `${kindLabel(describe(e.condition).kind)}: ${label(e.condition)}` })),
        );
        targetSelect.value = pickedTarget;
        if (targetSelect.value !== pickedTarget) targetSelect.value = "";
        includeSelect.value = pickedInclude;
        if (includeSelect.value !== pickedInclude) includeSelect.value = "";
      };
      picker.onChange(renderLists);
      renderLists();

      const addTarget = button("Add", () => {
        if (targetSelect.value === "") return;
        chosenTargets.push(targetSelect.value);
        renderLists();
      }, { small: true });
      const addInclude = button("Add", () => {
        const found = executions.find((e) => executionId(e.condition) === includeSelect.value);
        if (found === undefined) return;
        chosenIncludes.push(found.condition);
        renderLists();
      }, { small: true });

      await openDialog({
        title: execution ? "Edit execution" : `Set ${type.label.toLowerCase()} execution`,
        name: "execution",
        wide: true,
        submitLabel: "Save",
        body: [
          h("fieldset", { class: "group" }, h("legend", { text: "Condition" }), picker.el),
          h(
            "fieldset",
            { class: "group" },
            h("legend", { text: "Targets" }),
            h("p", { class: "hint", text: "Called in this order." }),
            targetsList,
            h("div", { class: "input-row" }, targetSelect, addTarget),
          ),
          h(
            "fieldset",
            { class: "group" },
            h("legend", { text: "Includes" }),
            h("p", { class: "hint", text: `Other ${type.label.toLowerCase()} executions whose targets run after these targets, in this order (up to 3 levels, each target once).` }),
            includesList,
            h("div", { class: "input-row" }, includeSelect, addInclude),
          ),
        ],
        onSubmit: async () => {
          const condition = picker.condition();
          if (condition === undefined) throw new Error("Choose the condition first.");
          if (chosenTargets.length === 0 && chosenIncludes.length === 0) throw new Error("Add at least one target or include (Delete removes an execution).");
          await api.setExecution(condition, chosenTargets, chosenIncludes);
          toast(`Saved the execution ${executionId(condition)}.`);
          await load();
        },
      });
    }

    async function loadChoices() {
      if (type.key === "request" || type.key === "response") {
        const [methods, services] = await Promise.all([api.listExecutionMethods(), api.listExecutionServices()]);
        return { methods, services };
      }
      if (type.key === "function") return { functions: await api.listExecutionFunctions() };
      // No RPC lists event types: suggest those of existing executions and given-up deliveries.
      const [all, failed] = await Promise.all([api.listExecutions(type.enumValue), api.listFailedEventDeliveries(100).catch(() => [])]);
      const events = new Set();
      for (const e of all) if (e.condition?.event?.event) events.add(e.condition.event.event);
      for (const f of failed) if (f.eventType) events.add(f.eventType);
      return { events: [...events].sort() };
    }

    /** fixedCondition shows the condition of an execution being edited (the condition identifies it). */
    function fixedCondition(condition) {
      const d = describe(condition);
      return {
        el: h("p", { class: "condition" }, badge(kindLabel(d.kind)), " ", h("span", { class: "mono", text: d.kind === "all" ? "all" : label(condition) })),
        condition: () => condition,
        onChange() {},
      };
    }

    /** conditionPicker chooses a condition of the page's type, fed by the ListExecution* calls. */
    function conditionPicker(choices) {
      const listeners = [];
      const changed = () => listeners.forEach((f) => f());
      const kinds =
        type.key === "event"
          ? [
              { key: "event", text: "Event type" },
              { key: "group", text: "Event group" },
              { key: "all", text: "All events" },
            ]
          : type.key === "function"
            ? [{ key: "function", text: "Function" }]
            : [
                { key: "method", text: "Method" },
                { key: "service", text: "Service" },
                { key: "all", text: "All" },
              ];
      const group = `kind-${Math.random().toString(36).slice(2, 8)}`;
      const radios = kinds.map((k, i) => h("input", { type: "radio", name: group, value: k.key, checked: i === 0 }));
      const controls = new Map();
      let suggestions = null;
      if (type.key === "request" || type.key === "response") {
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
      } else if (type.key === "event") {
        const listId = `${group}-events`;
        controls.set("event", h("input", { type: "text", name: "event", list: listId, placeholder: "user.human.added", "aria-label": "Event type name", autocomplete: "off" }));
        suggestions = h("datalist", { id: listId }, choices.events.map((e) => h("option", { value: e })));
        controls.set("group", h("input", { type: "text", name: "group", placeholder: "user.human", "aria-label": "Event group name", autocomplete: "off" }));
      } else {
        controls.set("function", h("select", { name: "function", "aria-label": "Function name" }, choices.functions.map((f) => h("option", { value: f, text: f }))));
      }
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
          return make(type.key, kind, value);
        },
        onChange(f) {
          listeners.push(f);
        },
      };
    }

    function remove(execution) {
      const id = executionId(execution.condition);
      return confirmAction({
        title: "Delete execution",
        message: ["Delete the execution ", h("strong", { class: "mono", text: id }), "? Its targets stop being called for this condition. Executions that include it lose its targets, and are removed when nothing else is left in them."],
        confirmLabel: "Delete",
        run: () => api.setExecution(execution.condition, [], []),
      }).then(async (done) => {
        if (!done) return;
        toast(`Deleted the execution ${id}.`);
        await load();
      });
    }

    setBusy(list);
    void load();
    return { unmount() {} };
  },
};

/**
 * renderOrdered fills an ordered list of items with move-up, move-down and remove buttons.
 * @param {HTMLElement} list
 * @param {any[]} items changed in place
 * @param {(item: any) => any[]} describeItem
 * @param {() => void} rerender
 * @param {string} noun
 */
function renderOrdered(list, items, describeItem, rerender, noun) {
  if (items.length === 0) {
    replace(list, h("li", { class: "ordered-empty muted", text: `No ${noun}s.` }));
    return;
  }
  const move = (from, to) => {
    const [item] = items.splice(from, 1);
    items.splice(to, 0, item);
    rerender();
  };
  replace(
    list,
    items.map((item, i) =>
      h(
        "li",
        { class: "ordered-item" },
        h("span", { class: "ordered-index", text: String(i + 1) }),
        describeItem(item),
        h(
          "span",
          { class: "ordered-actions" },
          h("button", { type: "button", class: "btn btn-small btn-ghost", text: "↑", title: `Move ${noun} up`, "aria-label": `Move ${noun} ${i + 1} up`, disabled: i === 0, onClick: () => move(i, i - 1) }),
          h("button", { type: "button", class: "btn btn-small btn-ghost", text: "↓", title: `Move ${noun} down`, "aria-label": `Move ${noun} ${i + 1} down`, disabled: i === items.length - 1, onClick: () => move(i, i + 1) }),
          h("button", { type: "button", class: "btn btn-small btn-ghost", text: "✕", title: `Remove ${noun}`, "aria-label": `Remove ${noun} ${i + 1}`, onClick: () => {
            items.splice(i, 1);
            rerender();
          } }),
        ),
      ),
    ),
  );
}
