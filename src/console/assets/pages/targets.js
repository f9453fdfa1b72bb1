// Targets: list, create, edit, delete, rotate the signing key; "Test" opens the test page for a target.
import { badge, breakable, button, durationSeconds, field, formatDateTime, formatDuration, h, replace } from "../dom.js";
import { confirmAction, emptyState, errorText, openDialog, pageHeader, setBusy, showSecret, table, toast } from "../ui.js";

/** The target types: the JSON field of the oneof, a short name and what it does. */
export const targetTypes = [
  { key: "restWebhook", name: "Webhook", help: "Only the HTTP status counts; the answer is ignored." },
  { key: "restCall", name: "Call", help: "A non-empty JSON answer replaces the request or response message." },
  { key: "restAsync", name: "Async", help: "Fired in the background; never delays or changes the RPC." },
];

/**
 * typeOf returns the type entry of a target.
 * @param {any} target
 */
export function typeOf(target) {
  return targetTypes.find((t) => target[t.key] !== undefined) ?? { key: "", name: "?", help: "" };
}

/**
 * targetsPage is the page of targets.
 */
export const targetsPage = {
  /**
   * @param {HTMLElement} container
   * @param {{ api: ReturnType<typeof import("../api.js").createApi>, navigate: (hash: string) => void }} context
   */
  mount(container, context) {
    const { api } = context;
    const list = h("section", { class: "panel", "aria-label": "Targets" });
    const count = h("span");
    replace(
      container,
      pageHeader("Targets", [count, "HTTP endpoints that executions call, signed with the ZITADEL-Signature header."], [
        button("New target", () => edit(undefined), { kind: "primary" }),
      ]),
      list,
    );

    async function load() {
      try {
        const targets = await api.listTargets();
        count.textContent = targets.length === 1 ? "1 target. " : `${targets.length} targets. `;
        if (targets.length === 0) {
          replace(list, emptyState("No targets yet.", "Create one, then call it from an execution."));
          return;
        }
        replace(
          list,
          table(
            ["Name", "Type", "Endpoint", "Timeout", "On error", "Changed", ""],
            targets.map((t) => {
              const type = typeOf(t);
              const interrupt = t[type.key]?.interruptOnError === true;
              return [
                h("strong", { text: t.name }),
                badge(type.name, "info", type.help),
                h("span", { class: "mono" }, breakable(t.endpoint)),
                formatDuration(t.timeout),
                type.key === "restAsync" ? h("span", { class: "muted", text: "—" }) : interrupt ? badge("interrupt", "warn", "A failed call fails the RPC") : h("span", { class: "muted", text: "continue" }),
                h("span", { class: "nowrap", text: formatDateTime(t.changeDate) }),
                h("div", { class: "row-actions" }, actionsOf(t)),
              ];
            }),
            (i) => ({ dataset: { targetId: targets[i].id, targetName: targets[i].name } }),
          ),
        );
      } catch (e) {
        replace(list, emptyState("The targets could not be loaded.", errorText(e)));
      }
    }

    function actionsOf(target) {
      return [
        button("Calls", () => context.navigate(`#/deliveries?target=${encodeURIComponent(target.id)}`), { small: true, kind: "ghost", title: "Delivery log of this target" }),
        button("Test", () => context.navigate(`#/test?target=${encodeURIComponent(target.id)}`), { small: true, title: "Send a sample payload to this target" }),
        button("Edit", () => edit(target), { small: true }),
        button("Rotate key", () => rotate(target), { small: true, title: "Replace the signing key" }),
        button("Delete", () => remove(target), { small: true, kind: "danger" }),
      ];
    }

    /** edit opens the form of a new target (undefined) or of an existing one. */
    function edit(target) {
      const type = target ? typeOf(target) : targetTypes[0];
      const name = h("input", { type: "text", name: "name", required: true, maxlength: 1000, value: target?.name ?? "", autocomplete: "off" });
      const typeSelect = h(
        "select",
        { name: "type" },
        targetTypes.map((t) => h("option", { value: t.key, text: `${t.name}: ${t.help}`, selected: t.key === type.key })),
      );
      const endpoint = h("input", {
        type: "url",
        name: "endpoint",
        required: true,
        maxlength: 2048,
        value: target?.endpoint ?? "",
        placeholder: "https://hooks.example.com/actions",
        autocomplete: "off",
      });
      const seconds = target ? durationSeconds(target.timeout) : 10;
      const timeout = h("input", { type: "number", name: "timeout", required: true, min: 0.001, max: 270, step: "any", value: String(Number.isNaN(seconds) ? 10 : seconds) });
      const interrupt = h("input", { type: "checkbox", name: "interruptOnError", checked: target ? target[type.key]?.interruptOnError === true : false });
      const interruptField = h(
        "div",
        { class: "field field-check" },
        h("label", null, interrupt, " Interrupt on error: a failed call fails the RPC (otherwise it is logged and the next target runs)"),
      );
      const syncType = () => {
        interruptField.hidden = typeSelect.value === "restAsync";
      };
      typeSelect.addEventListener("change", syncType);
      syncType();
      return openDialog({
        title: target ? `Edit ${target.name}` : "New target",
        name: "target",
        submitLabel: target ? "Save" : "Create",
        body: [
          field("Name", name, "Unique, shown in executions and in the delivery log."),
          field("Type", typeSelect),
          field("Endpoint", endpoint, "The http(s) URL that receives the POST."),
          field("Timeout (seconds)", timeout, "Bounds the whole call: more than 0, at most 270."),
          interruptField,
        ],
        onSubmit: async () => {
          const chosen = typeSelect.value;
          const body = {
            name: name.value.trim(),
            endpoint: endpoint.value.trim(),
            timeout: `${Number(timeout.value)}s`,
            [chosen]: chosen === "restAsync" ? {} : { interruptOnError: interrupt.checked },
          };
          if (target) {
            await api.updateTarget(target.id, body);
            toast(`Saved ${body.name}.`);
            await load();
          } else {
            const created = await api.createTarget(body);
            await load();
            await showSecret({
              title: "Target created",
              intro: [h("strong", { text: body.name }), " was created. Its signing key verifies the ZITADEL-Signature header of each call:"],
              secret: created.signingKey,
            });
          }
        },
      });
    }

    function rotate(target) {
      let key = "";
      return confirmAction({
        title: "Rotate the signing key",
        message: [
          "A new signing key replaces the one of ",
          h("strong", { text: target.name }),
          " at once: calls from now on are signed with the new key only. Give it to the target first if it verifies signatures with a single key.",
        ],
        confirmLabel: "Rotate key",
        run: async () => {
          const answer = await api.rotateSigningKey(target.id);
          key = answer.signingKey ?? "";
        },
      }).then(async (done) => {
        if (!done) return;
        await load();
        await showSecret({ title: "New signing key", intro: ["The new signing key of ", h("strong", { text: target.name }), ":"], secret: key });
      });
    }

    function remove(target) {
      return confirmAction({
        title: "Delete target",
        message: ["Delete ", h("strong", { text: target.name }), "? It is removed from every execution that calls it."],
        confirmLabel: "Delete",
        run: () => api.deleteTarget(target.id),
      }).then(async (done) => {
        if (!done) return;
        toast(`Deleted ${target.name}.`);
        await load();
      });
    }

    setBusy(list);
    void load();
    return { unmount() {} };
  },
};
