// Test target (TestTarget): send a signed sample payload for a condition to a target, without any
// execution, and see what came back: the status, the latency, the start of the answer and, for call
// targets, whether the answer parses as the message the target may replace. The target and the
// condition are kept in the address ("#/test?target=<id>&type=request&value=<method>"), so a test can
// be linked and repeated.
import { badge, breakable, button, field, formatDuration, h, replace } from "../dom.js";
import { executionTypes, make } from "../conditions.js";
import { conditionPicker, loadConditionChoices } from "../condition-picker.js";
import { emptyState, errorText, pageHeader, setBusy } from "../ui.js";
import { prettyBody } from "./failed-deliveries.js";
import { statusBadge } from "./delivery-log.js";
import { typeOf } from "./targets.js";

/**
 * testTargetPage is the page that tests a target.
 */
export const testTargetPage = {
  /**
   * @param {HTMLElement} container
   * @param {{ api: any, params: URLSearchParams, navigate: (hash: string) => void }} context
   */
  mount(container, context) {
    const { api } = context;
    const form = h("section", { class: "panel", "aria-label": "Test" });
    const result = h("section", { class: "panel test-result", "aria-label": "Result", "aria-live": "polite", hidden: true });
    replace(
      container,
      pageHeader(
        "Test target",
        "Send a signed sample payload for a condition to a target, as a real call would, without setting an execution. The request and response messages of the sample are empty. The call is kept in the delivery log, marked as a test.",
      ),
      form,
      result,
    );
    let stopped = false;

    async function load() {
      let targets;
      try {
        targets = await api.listTargets();
      } catch (e) {
        replace(form, emptyState("The targets could not be loaded.", errorText(e)));
        return;
      }
      if (stopped) return;
      if (targets.length === 0) {
        replace(form, emptyState("No targets to test.", h("a", { href: "#/targets", text: "Create a target first." })));
        return;
      }
      const wanted = context.params.get("target") ?? "";
      const targetSelect = h(
        "select",
        { name: "target" },
        targets.map((t) => h("option", { value: t.id, text: `${t.name} (${typeOf(t).name})`, selected: t.id === wanted })),
      );
      const wantedType = executionTypes.find((t) => t.key === context.params.get("type")) ?? executionTypes[0];
      const typeSelect = h(
        "select",
        { name: "type" },
        executionTypes.map((t) => h("option", { value: t.key, text: `${t.label}: ${t.help}`, selected: t === wantedType })),
      );
      const pickerSlot = h("div", { class: "picker-slot" });
      const send = button("Send test", () => undefined, { type: "submit", kind: "primary" });
      const problem = h("div", { class: "alert alert-error", role: "alert", hidden: true });
      /** @type {{ condition(): any } | undefined} */
      let picker;
      let firstPicker = true;

      async function pickerFor(typeKey) {
        picker = undefined;
        send.disabled = true;
        replace(pickerSlot, h("p", { class: "loading", text: "Loading…" }));
        try {
          const choices = await loadConditionChoices(api, typeKey);
          if (stopped || typeSelect.value !== typeKey) return;
          const value = firstPicker ? (context.params.get("value") ?? "") : "";
          firstPicker = false;
          const made = conditionPicker(typeKey, choices, { concrete: true, initial: value === "" ? undefined : make(typeKey, typeKey === "request" || typeKey === "response" ? "method" : typeKey, value) });
          picker = made;
          replace(pickerSlot, made.el);
          send.disabled = false;
        } catch (e) {
          replace(pickerSlot, h("p", { class: "alert alert-error", text: `The choices could not be loaded: ${errorText(e)}` }));
        }
      }
      typeSelect.addEventListener("change", () => void pickerFor(typeSelect.value));

      const testForm = h(
        "form",
        {
          class: "test-form",
          onSubmit: async (e) => {
            e.preventDefault();
            problem.hidden = true;
            const condition = picker?.condition();
            if (condition === undefined) {
              problem.textContent = "Choose the method, event or function of the sample payload.";
              problem.hidden = false;
              return;
            }
            const targetId = targetSelect.value;
            const target = targets.find((t) => t.id === targetId);
            const typeKey = typeSelect.value;
            const value = typeKey === "function" ? condition.function.name : (condition[typeKey].method ?? condition[typeKey].event ?? "");
            history.replaceState(null, "", `#/test?${new URLSearchParams({ target: targetId, type: typeKey, value })}`);
            send.disabled = true;
            send.textContent = "Sending…";
            result.hidden = false;
            result.setAttribute("aria-busy", "true");
            setBusy(result);
            try {
              const answer = await api.testTarget(targetId, condition);
              if (!stopped) showResult(answer, target);
            } catch (err) {
              replace(result, h("p", { class: "alert alert-error", role: "alert", text: `The test could not be sent: ${errorText(err)}` }));
            } finally {
              result.setAttribute("aria-busy", "false");
              send.disabled = false;
              send.textContent = "Send test";
            }
          },
        },
        field("Target", targetSelect),
        field("Condition type", typeSelect),
        h("fieldset", { class: "group" }, h("legend", { text: "Sample payload for" }), pickerSlot),
        problem,
        h("div", { class: "form-actions" }, send),
      );
      replace(form, testForm);
      await pickerFor(typeSelect.value);
    }

    /** showResult fills the result panel with what TestTarget answered. */
    function showResult(answer, target) {
      const ok = answer.error === "" && answer.answerParses !== false;
      const parses =
        answer.answerParses === undefined
          ? null
          : answer.answerParses
            ? badge("answer parses", "ok", "The answer is a valid message for this condition")
            : badge("answer does not parse", "bad", answer.parseError || undefined);
      replace(
        result,
        h(
          "h2",
          { class: "panel-title" },
          ok ? "The target answered" : answer.error === "" ? "The answer does not parse" : "The call failed",
          " ",
          statusBadge({ status: answer.status, error: answer.error }),
        ),
        h(
          "dl",
          { class: "details" },
          h("dt", { text: "Target" }),
          h("dd", null, h("strong", { text: target?.name ?? "" }), " ", h("span", { class: "mono" }, breakable(target?.endpoint ?? ""))),
          h("dt", { text: "Latency" }),
          h("dd", { class: "latency", text: formatDuration(answer.latency) }),
          h("dt", { text: "Error" }),
          h("dd", { class: "error-text", text: answer.error || "—" }),
          parses ? [h("dt", { text: "Answer" }), h("dd", null, parses, answer.parseError ? h("span", { class: "error-text", text: ` ${answer.parseError}` }) : null)] : null,
          h("dt", { text: "Payload sent" }),
          h("dd", null, h("pre", { class: "payload", "data-excerpt": "payload", text: prettyBody(answer.payloadExcerpt) })),
          h("dt", { text: "Answer body" }),
          h("dd", null, answer.answerExcerpt === "" ? h("span", { class: "muted", text: "(empty)" }) : h("pre", { class: "payload", "data-excerpt": "answer", text: prettyBody(answer.answerExcerpt) })),
        ),
        h("p", { class: "hint" }, h("a", { href: `#/deliveries?target=${encodeURIComponent(target?.id ?? "")}`, text: "See the call in the delivery log" })),
      );
    }

    setBusy(form);
    void load();
    return {
      unmount() {
        stopped = true;
      },
    };
  },
};
