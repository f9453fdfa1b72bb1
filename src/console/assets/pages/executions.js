// Executions: which targets run under which condition, by type (request, response, event, function).
// Set or replace an execution's ordered targets and includes; delete it by setting an empty list.
// The best-match preview (ExplainExecution) tells, for a method, service, event or function, which
// execution runs, its targets in order with the includes expanded, and the levels it beat.
import { badge, breakable, button, formatDateTime, h, replace } from "../dom.js";
import { describe, executionId, executionTypes, kindLabel, label } from "../conditions.js";
import { confirmAction, emptyState, errorText, openDialog, pageHeader, setBusy, table, toast } from "../ui.js";
import { typeOf } from "./targets.js";
import { conditionPicker, loadConditionChoices } from "../condition-picker.js";

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
    const preview = h("section", { class: "panel preview", "aria-label": "Best match" });
    replace(
      container,
      pageHeader("Executions", `Which targets run, in order, for each condition. Only the best match runs: method, else service, else all.`, [
        button("Set execution", () => edit(undefined), { kind: "primary" }),
      ]),
      tabs,
      h("p", { class: "tab-help", text: `${type.label} executions run ${type.help}.` }),
      preview,
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
      const picker = execution ? fixedCondition(execution.condition) : conditionPicker(type.key, choices);
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

    function loadChoices() {
      return loadConditionChoices(api, type.key);
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

    /** showPreview fills the best-match panel: a picker of the page's type and what ExplainExecution says. */
    async function showPreview() {
      let choices;
      try {
        choices = await loadChoices();
      } catch (e) {
        replace(preview, h("p", { class: "hint", text: `The best-match preview could not load its choices: ${errorText(e)}` }));
        return;
      }
      const picker = conditionPicker(type.key, choices);
      const result = h("div", { class: "preview-result", role: "status", "aria-live": "polite" });
      const explain = async () => {
        const condition = picker.condition();
        if (condition === undefined) {
          replace(result, h("p", { class: "hint", text: "Choose what to explain first." }));
          return;
        }
        result.setAttribute("aria-busy", "true");
        try {
          renderExplanation(result, await api.explainExecution(condition), condition);
        } catch (e) {
          replace(result, h("p", { class: "alert alert-error", text: `Could not explain: ${errorText(e)}` }));
        } finally {
          result.setAttribute("aria-busy", "false");
        }
      };
      replace(
        preview,
        h("h2", { class: "panel-title", text: "Best match" }),
        h(
          "form",
          { class: "preview-form", onSubmit: (e) => (e.preventDefault(), void explain()) },
          picker.el,
          button("Explain", () => void explain(), { type: "submit", title: "Which execution runs, and its targets in order" }),
        ),
        result,
      );
    }

    /** renderExplanation shows the execution that runs, its targets in order and the levels looked at. */
    function renderExplanation(el, answer, asked) {
      const levels = h(
        "ol",
        { class: "levels", "aria-label": "Levels, most specific first" },
        answer.levels.map((level) =>
          h(
            "li",
            { class: ["level", level.matched ? "level-matched" : level.exists ? "level-beaten" : "level-none"], dataset: { executionId: level.executionId } },
            h("span", { class: "mono" }, breakable(level.executionId)),
            " ",
            level.matched ? badge("runs", "ok", "The most specific level with an execution") : level.exists ? badge("beaten", "warn", "Set, but a more specific level wins") : badge("not set", "", "No execution at this level"),
          ),
        ),
      );
      const matched = answer.execution?.condition ? executionId(answer.execution.condition) : "";
      const summary =
        answer.execution === undefined
          ? h("p", { class: "preview-summary", text: `No execution matches ${executionId(asked)}: no target runs.` })
          : h("p", { class: "preview-summary" }, "Runs ", h("strong", { class: "mono" }, breakable(matched)), answer.targets.length === 0 ? ", which calls no target." : `, which calls ${answer.targets.length === 1 ? "1 target" : `${answer.targets.length} targets`} in this order:`);
      const targetsList =
        answer.targets.length === 0
          ? null
          : h(
              "ol",
              { class: "explained-targets", "aria-label": "Targets that run, in order" },
              answer.targets.map((t) => {
                const type = typeOf({ [toKey(t.targetType)]: {} });
                return h(
                  "li",
                  { dataset: { targetId: t.targetId } },
                  h("strong", { text: t.targetName || t.targetId }),
                  " ",
                  badge(type.name, "info", type.help),
                  t.interruptOnError ? [" ", badge("interrupt", "warn", "A failed call fails the RPC")] : null,
                  (t.via ?? []).length > 1 ? h("span", { class: "via" }, " via ", (t.via ?? []).slice(1).map((v, i) => [i > 0 ? " → " : "", h("span", { class: "mono" }, breakable(v))])) : null,
                );
              }),
            );
      replace(el, summary, targetsList, h("p", { class: "hint", text: "Levels looked at, most specific first:" }), levels);
    }

    setBusy(list);
    void load();
    void showPreview();
    return { unmount() {} };
  },
};

/**
 * toKey turns a target type of ExplainExecution ("rest_webhook") into the key of the target's JSON
 * ("restWebhook").
 * @param {string} targetType
 */
function toKey(targetType) {
  return String(targetType ?? "").replace(/_([a-z])/g, (_, c) => c.toUpperCase());
}

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
