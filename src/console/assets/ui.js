// Shared pieces of the console's pages: modal dialogs, confirmations, notices, the one-time key display.
import { ApiError } from "./api.js";
import { button, field, h, replace } from "./dom.js";

/**
 * errorText turns an error into one line for people, naming the status code of an ApiError.
 * @param {unknown} error
 */
export function errorText(error) {
  if (error instanceof ApiError) return error.status === 0 ? error.message : `${error.message} (${error.codeName})`;
  return error instanceof Error ? error.message : String(error);
}

/**
 * alertBox is an error (or notice) box; empty and hidden until `show` is called.
 * @param {string} [tone] "error" (default) or "info"
 */
export function alertBox(tone = "error") {
  const el = h("div", { class: ["alert", `alert-${tone}`], role: tone === "error" ? "alert" : "status", hidden: true });
  return {
    el,
    /** @param {unknown} messageOrError */
    show(messageOrError) {
      el.textContent = typeof messageOrError === "string" ? messageOrError : errorText(messageOrError);
      el.hidden = false;
    },
    clear() {
      el.textContent = "";
      el.hidden = true;
    },
  };
}

/**
 * openDialog shows a modal dialog with a title, a body and actions, and removes it from the page when
 * it closes. `onSubmit` runs when the primary action is chosen; it may throw (the error is shown in the
 * dialog and it stays open) or return false to keep it open. Resolves when the dialog closes: true when
 * it was submitted, false when it was cancelled.
 * @param {{ title: string, body: any[], submitLabel?: string, submitKind?: string, cancelLabel?: string | null,
 *   onSubmit?: () => Promise<boolean | void> | boolean | void, wide?: boolean, name?: string }} options
 */
export function openDialog(options) {
  return new Promise((resolve) => {
    const error = alertBox();
    let submitted = false;
    const submit = h("button", { type: "submit", class: ["btn", `btn-${options.submitKind ?? "primary"}`], text: options.submitLabel ?? "Save" });
    const form = h(
      "form",
      { method: "dialog", novalidate: false },
      h("header", { class: "dialog-header" }, h("h2", { text: options.title })),
      h("div", { class: "dialog-body" }, options.body, error.el),
      h(
        "footer",
        { class: "dialog-footer" },
        options.cancelLabel === null ? null : button(options.cancelLabel ?? "Cancel", () => dialog.close(), { kind: "ghost" }),
        submit,
      ),
    );
    const dialog = h("dialog", { class: ["dialog", options.wide ? "dialog-wide" : ""], "aria-label": options.title, dataset: { dialog: options.name ?? "" } }, form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (submit.disabled) return;
      error.clear();
      submit.disabled = true;
      try {
        const keep = options.onSubmit ? await options.onSubmit() : undefined;
        if (keep !== false) {
          submitted = true;
          dialog.close();
        }
      } catch (e) {
        error.show(e);
      } finally {
        submit.disabled = false;
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(submitted);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

/**
 * confirmAction asks before something that cannot be undone; `run` does it. Resolves true when it ran.
 * @param {{ title: string, message: any, confirmLabel: string, run: () => Promise<unknown> }} options
 */
export function confirmAction(options) {
  return openDialog({
    title: options.title,
    body: [h("p", null, options.message)],
    submitLabel: options.confirmLabel,
    submitKind: "danger",
    name: "confirm",
    onSubmit: async () => {
      await options.run();
    },
  });
}

/**
 * showSecret shows a signing key once, with a button to copy it.
 * @param {{ title: string, intro: any, secret: string }} options
 */
export function showSecret(options) {
  const input = h("input", { type: "text", readonly: true, value: options.secret, class: "mono secret", spellcheck: "false", "data-secret": "" });
  const copied = h("span", { class: "hint", role: "status" });
  const copy = button("Copy", async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(options.secret);
      copied.textContent = "Copied.";
    } catch {
      copied.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
    }
  });
  return openDialog({
    title: options.title,
    name: "secret",
    body: [
      h("p", null, options.intro),
      field("Signing key", h("div", { class: "input-row" }, input, copy)),
      copied,
      h("p", { class: "hint", text: "It is not shown again here. Keep it where the target can read it." }),
    ],
    submitLabel: "Done",
    cancelLabel: null,
  });
}

/**
 * toast shows a short notice at the bottom of the page for a few seconds.
 * @param {string} message
 * @param {string} [tone] "ok" (default) or "error"
 */
export function toast(message, tone = "ok") {
  let region = document.getElementById("toasts");
  if (region === null) {
    region = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.appendChild(region);
  }
  const item = h("div", { class: ["toast", `toast-${tone}`], text: message });
  region.appendChild(item);
  setTimeout(() => item.remove(), 5000);
}

/**
 * pageHeader is a page's title line with optional text below and actions on the right.
 * @param {string} title
 * @param {any} [subtitle]
 * @param {any[]} [actions]
 */
export function pageHeader(title, subtitle, actions = []) {
  return h(
    "div",
    { class: "page-header" },
    h("div", null, h("h1", { text: title }), subtitle ? h("p", { class: "subtitle" }, subtitle) : null),
    h("div", { class: "page-actions" }, actions),
  );
}

/**
 * emptyState is the text shown in place of an empty table.
 * @param {string} title
 * @param {any} [detail]
 */
export function emptyState(title, detail) {
  return h("div", { class: "empty" }, h("p", { class: "empty-title", text: title }), detail ? h("p", null, detail) : null);
}

/**
 * loading shows a placeholder while a page loads.
 */
export function loading() {
  return h("p", { class: "loading", text: "Loading…" });
}

/**
 * table builds a table from column titles and rows (arrays of cells; a cell may be any child of h).
 * `rowProps` gives the props of each row.
 * @param {string[]} columns
 * @param {any[][]} rows
 * @param {(index: number) => Record<string, any>} [rowProps]
 */
export function table(columns, rows, rowProps) {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      null,
      h("thead", null, h("tr", null, columns.map((c) => h("th", { scope: "col", text: c })))),
      h(
        "tbody",
        null,
        rows.map((cells, i) => h("tr", rowProps?.(i) ?? null, cells.map((cell) => h("td", null, cell)))),
      ),
    ),
  );
}

/**
 * setBusy swaps a container's content for the loading placeholder.
 * @param {HTMLElement} container
 */
export function setBusy(container) {
  replace(container, loading());
}
