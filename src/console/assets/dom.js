// DOM helpers of the console. Everything is built with createElement and textContent, never from HTML
// strings: the page's Content-Security-Policy enforces Trusted Types, so innerHTML would throw.

/**
 * h creates an element. `props` sets attributes, except: `class` (a string or an array, falsy entries
 * dropped), `text` (textContent), `dataset` (data-* attributes), `on<Event>` (listeners) and the DOM
 * properties `value`, `checked`, `disabled`, `selected`, `hidden` (set as properties). Children may be
 * nodes, strings, numbers, arrays of them, or null/undefined/false (skipped).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [props]
 * @param {...any} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props, ...children) {
  /** @type {any} */
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) {
      if (key === "disabled" || key === "checked" || key === "hidden") el[key] = false;
      continue;
    }
    if (key === "class") {
      el.className = Array.isArray(value) ? value.filter(Boolean).join(" ") : value;
    } else if (key === "text") {
      el.textContent = String(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "value" || key === "checked" || key === "disabled" || key === "selected" || key === "hidden") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

/**
 * append adds children (as h takes them) to a node.
 * @param {Node} parent
 * @param {any[]} children
 */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/**
 * replace empties an element and adds children.
 * @param {Element} parent
 * @param {...any} children
 */
export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, children);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
const timeOnly = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/**
 * formatDateTime shows an RFC 3339 timestamp in the browser's locale; "" for none.
 * @param {string | undefined} value
 */
export function formatDateTime(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : dateTime.format(date);
}

/**
 * formatTime shows the time of day of a Date.
 * @param {Date} date
 */
export function formatTime(date) {
  return timeOnly.format(date);
}

/**
 * durationSeconds parses a protobuf JSON Duration ("1.500s") into seconds; NaN when malformed.
 * @param {string | undefined} value
 */
export function durationSeconds(value) {
  if (typeof value !== "string" || !/^-?\d+(\.\d+)?s$/.test(value)) return Number.NaN;
  return Number(value.slice(0, -1));
}

/**
 * formatDuration shows a protobuf JSON Duration for people: "850 ms", "1.5 s", "10 s".
 * @param {string | undefined} value
 */
export function formatDuration(value) {
  const seconds = durationSeconds(value);
  if (Number.isNaN(seconds)) return value ?? "";
  if (seconds < 1) {
    const ms = seconds * 1000;
    return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
  }
  return `${Number(seconds.toFixed(3))} s`;
}

/**
 * field wraps a form control with its label and an optional hint.
 * @param {string} label
 * @param {HTMLElement} control
 * @param {string} [hint]
 */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    control,
    hint ? h("p", { class: "hint", text: hint }) : null,
  );
}

/**
 * button creates a button of a kind ("primary", "danger", "ghost" or "" for a plain one).
 * @param {string} label
 * @param {() => void} onClick
 * @param {{ kind?: string, title?: string, type?: string, small?: boolean }} [options]
 */
export function button(label, onClick, options = {}) {
  return h("button", {
    type: options.type ?? "button",
    class: ["btn", options.kind ? `btn-${options.kind}` : "", options.small ? "btn-small" : ""],
    title: options.title,
    "aria-label": options.title && options.title !== label ? `${label}: ${options.title}` : undefined,
    text: label,
    onClick,
  });
}

/**
 * badge is a small label; `tone` is "ok", "bad", "warn", "info" or "" (neutral).
 * @param {string} text
 * @param {string} [tone]
 * @param {string} [title]
 */
export function badge(text, tone = "", title) {
  return h("span", { class: ["badge", tone ? `badge-${tone}` : ""], text, title });
}

/**
 * breakable returns a text as nodes with line-break opportunities (<wbr>) after each "/" and ".", so that
 * long method names, execution IDs and keys wrap at their separators rather than mid-word.
 * @param {string | undefined} text
 * @returns {Node[]}
 */
export function breakable(text) {
  const nodes = [];
  for (const part of String(text ?? "").split(/(?<=[/.])/)) {
    if (nodes.length > 0) nodes.push(document.createElement("wbr"));
    nodes.push(document.createTextNode(part));
  }
  return nodes;
}

/**
 * formatWhen shows an RFC 3339 timestamp compactly: the time for today, else the date and time.
 * @param {string | undefined} value
 */
export function formatWhen(value) {
  if (!value) return "";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return value;
  return date.toDateString() === new Date().toDateString() ? timeOnly.format(date) : dateTime.format(date);
}
