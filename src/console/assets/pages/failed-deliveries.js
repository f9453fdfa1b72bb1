// Failed event deliveries (ListFailedEventDeliveries): event deliveries the worker gave up (a 4xx answer,
// a deleted target, or older than the maximum age), newest first, with the payload that was not delivered.
// "Retry" puts a delivery back into the queue (RetryFailedEventDeliveries); its details offer to retry
// all given-up deliveries of the same target or of the same event type. Each is retried once.
import { breakable, button, formatDateTime, formatWhen, h, replace } from "../dom.js";
import { confirmAction, emptyState, errorText, pageHeader, setBusy, table, toast } from "../ui.js";

/** How many of the newest given-up deliveries are listed. */
const limit = 200;

/**
 * prettyBody formats a JSON payload for reading; other text stays as it is.
 * @param {string} body
 */
export function prettyBody(body) {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
}

/**
 * failedDeliveriesPage is the page of given-up event deliveries.
 */
export const failedDeliveriesPage = {
  /**
   * @param {HTMLElement} container
   * @param {{ api: any, navigate: (hash: string) => void }} context
   */
  mount(container, context) {
    const { api } = context;
    const list = h("section", { class: "panel", "aria-label": "Failed event deliveries" });
    const updated = h("span", { class: "live-state paused", role: "status" });
    const open = new Set();
    let deliveries = [];
    let names = new Map();
    replace(
      container,
      pageHeader("Failed deliveries", "Event deliveries that were given up: answered with a 4xx status, for a deleted target, or older than the maximum age.", [
        updated,
        button("Refresh", () => void load(), { title: "Load the list again" }),
      ]),
      list,
    );

    async function load() {
      try {
        const [found, targets] = await Promise.all([api.listFailedEventDeliveries(limit), api.listTargets()]);
        deliveries = found;
        names = new Map(targets.map((t) => [t.id, t.name]));
        updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
        render();
      } catch (e) {
        replace(list, emptyState("The failed deliveries could not be loaded.", errorText(e)));
      }
    }

    function render() {
      if (deliveries.length === 0) {
        replace(list, emptyState("No failed deliveries.", "Every event delivery so far was delivered or is still being retried."));
        return;
      }
      const rows = [];
      const props = [];
      for (const d of deliveries) {
        const expanded = open.has(d.id);
        const name = names.get(d.targetId);
        rows.push([
          h("button", {
            type: "button",
            class: "btn btn-small btn-ghost disclosure",
            "aria-expanded": String(expanded),
            "aria-label": `Payload of the delivery ${d.id}`,
            text: expanded ? "▾" : "▸",
            onClick: () => {
              if (open.has(d.id)) open.delete(d.id);
              else open.add(d.id);
              render();
            },
          }),
          h("span", { class: "nowrap", title: formatDateTime(d.failedDate), text: formatWhen(d.failedDate) }),
          h(
            "span",
            { class: "mono" },
            breakable(d.eventType),
            d.executionId === `event/${d.eventType}` ? null : h("span", { class: "trigger" }, "via ", breakable(d.executionId)),
          ),
          name
            ? h("a", { href: `#/deliveries?target=${encodeURIComponent(d.targetId)}`, title: "Delivery log of this target", text: name })
            : h("span", { class: "muted", title: d.targetId, text: `${d.targetId} (deleted)` }),
          h("span", { class: "mono" }, breakable(d.orderingKey)),
          String(d.attempts ?? 0),
          h("span", { class: "error-text", text: d.error ?? "" }),
          button("Retry", () => void retry({ id: d.id }, `the delivery of ${d.eventType}`), { small: true, title: "Deliver it again" }),
        ]);
        props.push({ dataset: { deliveryId: d.id } });
        if (expanded) {
          rows.push(null);
          props.push({ class: "details-row" });
        }
      }
      const built = table(["", "Given up", "Event", "Target", "Aggregate", "Attempts", "Error", ""], rows.map((r) => r ?? []), (i) => props[i]);
      let index = -1;
      built.querySelectorAll("tbody tr").forEach((tr, i) => {
        if (rows[i] !== null) {
          index++;
          return;
        }
        const d = deliveries[index];
        tr.replaceChildren(
          h(
            "td",
            { colspan: "8" },
            h("dl", { class: "details" }, [
              [h("dt", { text: "Delivery ID" }), h("dd", { class: "mono", text: d.id })],
              [h("dt", { text: "Target ID" }), h("dd", { class: "mono", text: d.targetId })],
              [h("dt", { text: "Condition" }), h("dd", { class: "mono", text: d.executionId })],
              [h("dt", { text: "Event stored" }), h("dd", { text: formatDateTime(d.createdDate) })],
              [h("dt", { text: "Payload" }), h("dd", null, h("pre", { class: "payload", text: prettyBody(d.body ?? "") }))],
            ]),
            h(
              "div",
              { class: "row-actions" },
              button(`Retry all to ${names.get(d.targetId) ?? d.targetId}`, () => void retryMany({ targetId: d.targetId }, `to the target ${names.get(d.targetId) ?? d.targetId}`), {
                small: true,
                title: "Every given-up delivery to this target",
              }),
              button(`Retry all ${d.eventType}`, () => void retryMany({ eventType: d.eventType }, `of the event type ${d.eventType}`), {
                small: true,
                title: "Every given-up delivery of this event type",
              }),
            ),
          ),
        );
      });
      replace(list, deliveries.length >= limit ? h("p", { class: "hint", text: `The ${limit} newest.` }) : null, built);
    }

    /** retry requeues what `selection` names and reloads the list. */
    async function retry(selection, what) {
      try {
        const retried = await api.retryFailedEventDeliveries(selection);
        toast(retried === 0 ? `Nothing to retry: ${what} was retried already.` : retried === 1 ? `Retrying ${what}.` : `Retrying ${retried} deliveries ${what}.`);
      } catch (e) {
        toast(`Could not retry ${what}: ${errorText(e)}`, "error");
      }
      await load();
    }

    /** retryMany asks first, then retries every given-up delivery the selection names. */
    async function retryMany(selection, what) {
      const count = deliveries.filter((d) => (selection.targetId === undefined || d.targetId === selection.targetId) && (selection.eventType === undefined || d.eventType === selection.eventType)).length;
      const done = await confirmAction({
        title: "Retry deliveries",
        message: [`Put every given-up delivery ${what} back into the queue`, count > 0 ? ` (${count} listed here)` : "", "? Each is delivered again once, after the deliveries waiting for the same aggregate."],
        confirmLabel: "Retry",
        run: async () => {
          const retried = await api.retryFailedEventDeliveries(selection);
          toast(`Retrying ${retried === 1 ? "1 delivery" : `${retried} deliveries`} ${what}.`);
        },
      });
      if (done) await load();
    }

    setBusy(list);
    void load();
    return { unmount() {} };
  },
};
