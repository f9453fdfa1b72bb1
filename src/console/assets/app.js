// The console's entry: signing in with the management token, the page frame and the hash router
// ("#/targets", "#/executions/request", "#/deliveries?target=...", "#/failed").
import { ApiError, createApi, PERMISSION_DENIED, UNAUTHENTICATED } from "./api.js";
import { field, h, replace } from "./dom.js";
import { deliveryLogPage } from "./pages/delivery-log.js";
import { executionsPage } from "./pages/executions.js";
import { failedDeliveriesPage } from "./pages/failed-deliveries.js";
import { targetsPage } from "./pages/targets.js";
import { testTargetPage } from "./pages/test-target.js";
import { alertBox, errorText } from "./ui.js";

/**
 * The pages. Each `mount(container, context)` fills the container and returns { unmount() }; `context`
 * has the api client, the route's parameters (`params`: URLSearchParams, `rest`: path after the page's
 * own) and `navigate(hash)`.
 */
const routes = [
  { path: "targets", title: "Targets", page: targetsPage },
  { path: "executions", title: "Executions", page: executionsPage },
  { path: "deliveries", title: "Delivery log", page: deliveryLogPage },
  { path: "failed", title: "Failed deliveries", page: failedDeliveriesPage },
  { path: "test", title: "Test target", page: testTargetPage },
];

const tokenKey = "connect-actions.console.token";
const apiBaseUrl = document.querySelector('meta[name="connect-actions-api"]')?.getAttribute("content") ?? "";
/**
 * The host whose instance (tenant) the console manages: the ActionService finds the instance from the host
 * it is called on, as ZITADEL does from the domain. The token is kept per origin (sessionStorage), so each
 * instance's host has its own sign-in.
 */
const instanceHost = apiBaseUrl === "" ? location.host : new URL(apiBaseUrl, location.href).host;
const root = /** @type {HTMLElement} */ (document.getElementById("app"));

let token = sessionStorage.getItem(tokenKey) ?? "";
/** @type {{ unmount(): void } | undefined} */
let current;

const api = createApi({
  baseUrl: apiBaseUrl,
  token: () => token,
  onUnauthenticated: () => {
    if (token !== "") signOut("The ActionService no longer accepts the token: sign in again.");
  },
});

function signOut(notice) {
  token = "";
  sessionStorage.removeItem(tokenKey);
  showLogin(notice);
}

/**
 * showLogin asks for the management token and checks it with a cheap call before keeping it.
 * @param {string} [notice]
 */
function showLogin(notice) {
  current?.unmount();
  current = undefined;
  document.title = "Sign in · Actions console";
  const error = alertBox();
  const info = alertBox("info");
  if (notice) info.show(notice);
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "current-password",
    required: true,
    spellcheck: "false",
    placeholder: "ACTIONS_ADMIN_TOKEN",
  });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-block", text: "Sign in" });
  const form = h(
    "form",
    { class: "login-form" },
    field("Management token", input, "The bearer token of the ActionService. It is kept in this browser tab only (sessionStorage) until you sign out or close the tab."),
    info.el,
    error.el,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    info.clear();
    const candidate = input.value.trim();
    if (candidate === "") return;
    submit.disabled = true;
    submit.textContent = "Checking…";
    const probe = createApi({ baseUrl: apiBaseUrl, token: () => candidate });
    try {
      await probe.listExecutionServices();
      token = candidate;
      sessionStorage.setItem(tokenKey, token);
      if (!location.hash || location.hash === "#" || location.hash === "#/") location.hash = "#/targets";
      render();
    } catch (e) {
      if (e instanceof ApiError && e.code === UNAUTHENTICATED) {
        error.show(`This token was not accepted: ${e.message} (Unauthenticated).`);
        input.select();
      } else if (e instanceof ApiError && e.code === PERMISSION_DENIED) {
        error.show(`This token does not manage the instance of ${instanceHost}: ${e.message} (PermissionDenied).`);
        input.select();
      } else {
        error.show(`Could not sign in: ${errorText(e)}`);
      }
    } finally {
      submit.disabled = false;
      submit.textContent = "Sign in";
    }
  });
  replace(
    root,
    h(
      "main",
      { class: "login" },
      h(
        "section",
        { class: "login-card", "aria-labelledby": "login-title" },
        h("div", { class: "brand brand-login" }, logo(), h("span", { text: "Actions console" })),
        h("h1", { id: "login-title", text: "Sign in" }),
        h("p", { class: "subtitle", text: "Manage targets and executions, and watch their deliveries." }),
        h("p", { class: "login-instance", text: `Instance: ${instanceHost}` }),
        form,
      ),
    ),
  );
  input.focus();
}

function logo() {
  return h("span", { class: "logo", "aria-hidden": "true" });
}

/** parseHash splits "#/executions/event?x=1" into the route, the rest of the path and the parameters. */
function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query = ""] = raw.split("?", 2);
  const [first = "", ...rest] = path.split("/");
  return { first, rest: rest.join("/"), params: new URLSearchParams(query) };
}

/** render shows the page of the current hash (or the login when there is no token). */
function render() {
  if (token === "") {
    showLogin();
    return;
  }
  const { first, rest, params } = parseHash();
  const route = routes.find((r) => r.path === first);
  if (route === undefined) {
    location.replace("#/targets");
    return;
  }
  current?.unmount();
  document.title = `${route.title} · Actions console`;
  const container = h("main", { class: "content", id: "content", tabindex: "-1" });
  const nav = h(
    "nav",
    { class: "nav", "aria-label": "Pages" },
    routes.map((r) => h("a", { href: `#/${r.path}`, class: ["nav-link", r === route ? "active" : ""], "aria-current": r === route ? "page" : undefined, text: r.title })),
  );
  const logout = h("button", { type: "button", class: "btn btn-ghost btn-on-dark", text: "Sign out", onClick: () => signOut("Signed out.") });
  replace(
    root,
    h(
      "header",
      { class: "topbar" },
      h("a", { class: "brand", href: "#/targets" }, logo(), h("span", { text: "Actions console" })),
      nav,
      h(
        "div",
        { class: "topbar-right" },
        h("span", { class: "api-origin", title: "The instance whose actions this console manages", text: instanceHost }),
        logout,
      ),
    ),
    container,
  );
  current = route.page.mount(container, {
    api,
    params,
    rest,
    navigate: (hash) => {
      location.hash = hash;
    },
  });
}

window.addEventListener("hashchange", render);
render();
