// The delivery log (ListTargetCalls): the latest calls of targets, newest first, refreshed every few
// seconds while live. Filters (target, condition, status) are kept in the address
// ("#/deliveries?target=<id>&condition=<execution ID>&status=failed"), so a filtered view can be linked.
// A call's details show the excerpts of the payload sent and of the answer, when the delivery log keeps
// them (the `excerpts` option of createActions).
import { badge, breakable, button, field, formatDateTime, formatDuration, formatTime, formatWhen, h, replace } from "../dom.js";
import { executionId } from "../conditions.js";
import { emptyState, errorText, pageHeader, table } from "../ui.js";
import { prettyBody } from "./failed-deliveries.js";

/** How often the live log asks for new calls, in milliseconds. */
export const pollIntervalMs = 2000;
/** How many of the newest calls are shown. */
const limit = 100;

/**
 * statusBadge shows an HTTP status: green for 2xx, red for the rest, "no answer" for 0.
 * @param {any} call
 */
export function statusBadge(call) {
  const status = Number(call.status ?? 0);
  if (status === 0) return badge("no answer", "bad", call.error || "The target did not answer");
  return badge(String(status), status >= 200 && status < 300 && !call.error ? "ok" : "bad", call.error || undefined);
}

/**
 * deliveryLogPage is the page of the delivery log.
 */
export const deliveryLogPage = {
  /**
   * @param {HTMLElement} container
   * @param {{ api: any, params: URLSearchParams }} context
   */
  mount(container, context) {
    const { api } = context;
    const filter = {
      targetId: context.params.get("target") ?? "",
      executionId: context.params.get("condition") ?? "",
      // "", "failed" or "succeeded"; "failed=1" is the address of earlier versions.
      status: context.params.get("failed") === "1" ? "failed" : ["failed", "succeeded"].includes(context.params.get("status") ?? "") ? String(context.params.get("status")) : "",
    };
    let live = true;
    let stopped = false;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    let inFlight = false;
    let again = false;
    /** IDs of the calls whose details are open. */
    const open = new Set();
    /** @type {Map<string, string>} target names by ID */
    let names = new Map();

    const targetSelect = h("select", { name: "target" }, h("option", { value: "", text: "All targets" }));
    const conditionInput = h("input", {
      type: "search",
      name: "condition",
      list: "delivery-conditions",
      placeholder: "request/zitadel.user.v2.UserService",
      value: filter.executionId,
      autocomplete: "off",
      spellcheck: "false",
    });
    const conditions = h("datalist", { id: "delivery-conditions" });
    const statusSelect = h(
      "select",
      { name: "status" },
      [
        ["", "Any status"],
        ["failed", "Failed"],
        ["succeeded", "Succeeded"],
      ].map(([value, text]) => h("option", { value, text, selected: value === filter.status })),
    );
    const liveButton = h("button", { type: "button", class: "btn", "aria-pressed": "true" });
    const state = h("span", { class: "live-state", role: "status" });
    const list = h("section", { class: "panel", "aria-label": "Target calls" });
    const problem = h("div", { class: "alert alert-error", role: "alert", hidden: true });

    replace(
      container,
      pageHeader("Delivery log", "Every call of a target: by RPCs, events and functions, newest first.", [state, liveButton]),
      h(
        "form",
        { class: "filters", role: "search", onSubmit: (e) => e.preventDefault() },
        field("Target", targetSelect),
        field("Condition (execution ID)", conditionInput),
        conditions,
        field("Status", statusSelect),
        button("Clear filters", () => {
          targetSelect.value = "";
          conditionInput.value = "";
          statusSelect.value = "";
          filtersChanged();
        }, { kind: "ghost", small: true }),
      ),
      problem,
      list,
    );

    const showLive = () => {
      liveButton.textContent = live ? "Pause" : "Resume";
      liveButton.setAttribute("aria-pressed", String(live));
      liveButton.title = live ? "Stop refreshing" : `Refresh every ${pollIntervalMs / 1000} s`;
      state.classList.toggle("paused", !live);
    };
    liveButton.addEventListener("click", () => {
      live = !live;
      showLive();
      if (live) void refresh();
      else {
        clearTimeout(timer);
        state.textContent = `Paused · ${state.dataset.updated ?? ""}`;
      }
    });
    showLive();

    function filtersChanged() {
      filter.targetId = targetSelect.value;
      filter.executionId = conditionInput.value.trim();
      filter.status = statusSelect.value;
      const query = new URLSearchParams();
      if (filter.targetId) query.set("target", filter.targetId);
      if (filter.executionId) query.set("condition", filter.executionId);
      if (filter.status) query.set("status", filter.status);
      const q = query.toString();
      // replaceState, not location.hash: the page stays mounted (no hashchange).
      history.replaceState(null, "", `#/deliveries${q ? `?${q}` : ""}`);
      void refresh();
    }
    targetSelect.addEventListener("change", filtersChanged);
    statusSelect.addEventListener("change", filtersChanged);
    conditionInput.addEventListener("change", filtersChanged);
    conditionInput.addEventListener("search", filtersChanged);

    async function loadChoices() {
      try {
        const [targets, executions] = await Promise.all([api.listTargets(), api.listExecutions()]);
        names = new Map(targets.map((t) => [t.id, t.name]));
        replace(
          targetSelect,
          h("option", { value: "", text: "All targets" }),
          targets.map((t) => h("option", { value: t.id, text: t.name })),
        );
        if (filter.targetId && !names.has(filter.targetId)) targetSelect.appendChild(h("option", { value: filter.targetId, text: `${filter.targetId} (deleted)` }));
        targetSelect.value = filter.targetId;
        replace(conditions, executions.map((e) => executionId(e.condition)).sort().map((id) => h("option", { value: id })));
      } catch (e) {
        problem.textContent = `The filters could not be loaded: ${errorText(e)}`;
        problem.hidden = false;
      }
    }

    /** refresh asks for the calls now, then (while live) again after the interval. */
    async function refresh() {
      clearTimeout(timer);
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      list.setAttribute("aria-busy", "true");
      try {
        const { calls, total } = await api.listTargetCalls({
          targetId: filter.targetId,
          executionId: filter.executionId,
          failedOnly: filter.status === "failed",
          succeededOnly: filter.status === "succeeded",
          limit,
        });
        if (stopped) return;
        problem.hidden = true;
        render(calls, total);
        const updated = `updated ${formatTime(new Date())}`;
        state.dataset.updated = updated;
        state.textContent = live ? `Live · ${updated}` : `Paused · ${updated}`;
      } catch (e) {
        if (stopped) return;
        problem.textContent = `The delivery log could not be loaded: ${errorText(e)}${live ? " (trying again)" : ""}`;
        problem.hidden = false;
      } finally {
        inFlight = false;
        list.setAttribute("aria-busy", "false");
        if (!stopped) {
          if (again) {
            again = false;
            void refresh();
          } else if (live) {
            timer = setTimeout(() => void refresh(), pollIntervalMs);
          }
        }
      }
    }

    function render(calls, total) {
      if (calls.length === 0) {
        const filtered = filter.targetId || filter.executionId || filter.status;
        replace(list, emptyState(filtered ? "No calls match these filters." : "No target calls yet.", live ? "New calls appear here as they happen." : "Resume to see new calls."));
        return;
      }
      const rows = [];
      const rowProps = [];
      for (const call of calls) {
        const expanded = open.has(call.id);
        const toggle = h("button", {
          type: "button",
          class: "btn btn-small btn-ghost disclosure",
          "aria-expanded": String(expanded),
          "aria-label": `Details of the call ${call.id}`,
          text: expanded ? "▾" : "▸",
          onClick: () => {
            if (open.has(call.id)) open.delete(call.id);
            else open.add(call.id);
            render(calls, total);
          },
        });
        rows.push([
          toggle,
          h("span", { class: "nowrap", title: formatDateTime(call.startTime), text: formatWhen(call.startTime) }),
          h(
            "span",
            { class: "target-cell" },
            h("span", { text: call.targetName || names.get(call.targetId) || call.targetId }),
            call.async ? badge("async", "", "Called in the background: did not delay the RPC") : null,
            call.test ? badge("test", "info", "Sent by Test target, not by an execution") : null,
          ),
          conditionCell(call),
          statusBadge(call),
          h("span", { class: "nowrap", text: formatDuration(call.duration) }),
          String(call.attempt ?? 1),
          h("span", { class: "error-text", text: call.error ?? "" }),
        ]);
        rowProps.push({ class: ["call", call.error ? "call-failed" : ""], dataset: { callId: call.id } });
        if (expanded) {
          rows.push(null);
          rowProps.push({ class: "details-row" });
        }
      }
      const built = table(["", "Time", "Target", "Condition", "Status", "Duration", "Attempt", "Error"], rows.map((r) => r ?? []), (i) => rowProps[i]);
      // Fill the detail rows: one cell across all columns.
      const trs = built.querySelectorAll("tbody tr");
      let callIndex = -1;
      trs.forEach((tr, i) => {
        if (rows[i] !== null) {
          callIndex++;
          return;
        }
        tr.replaceChildren(h("td", { colspan: "8" }, details(calls[callIndex])));
      });
      replace(list, total > calls.length ? h("p", { class: "hint", text: `The ${calls.length} newest of ${total} calls.` }) : null, built);
    }

    /** conditionCell shows the execution ID, and the trigger when the ID does not already name it. */
    function conditionCell(call) {
      const id = call.executionId ?? "";
      const type = id.split("/", 1)[0];
      const named = id === type + call.trigger || id === `${type}/${call.trigger}`;
      return h(
        "span",
        { class: "mono" },
        breakable(id),
        named ? null : h("span", { class: "trigger" }, "by ", breakable(call.trigger)),
      );
    }

    function details(call) {
      const excerpt = (name, text) =>
        text ? h("pre", { class: "payload", "data-excerpt": name, text: prettyBody(text) }) : h("span", { class: "muted", text: "Not kept (the delivery log keeps excerpts when createActions' excerpts option is on)." });
      return h(
        "dl",
        { class: "details" },
        [
          ["Call ID", call.id],
          ["Target ID", call.targetId],
          ["Endpoint", call.endpoint],
          ["Trigger", call.trigger],
          ["Started", call.startTime],
          ["Error", call.error || "—"],
        ].map(([k, v]) => [h("dt", { text: k }), h("dd", { class: "mono wrap", text: v ?? "" })]),
        h("dt", { text: "Payload sent" }),
        h("dd", null, excerpt("request", call.requestExcerpt)),
        h("dt", { text: "Answer" }),
        h(
          "dd",
          null,
          call.responseExcerpt || !call.requestExcerpt
            ? excerpt("response", call.responseExcerpt)
            : h("span", { class: "muted", "data-excerpt": "response", text: "None: the answer was empty, or not read (webhooks and async targets only need the status)." }),
        ),
      );
    }

    list.appendChild(h("p", { class: "loading", text: "Loading…" }));
    void loadChoices();
    void refresh();
    return {
      unmount() {
        stopped = true;
        clearTimeout(timer);
      },
    };
  },
};
