// The web console in a real browser: Debian's chromium, headless, driven by playwright-core, against the
// sample server (which mounts the console at /console) with a real loopback target server.
//
// The tests run in order on one page, each building on the state the previous ones left: signing in,
// a target and an execution made through the forms, a UserService call in the live delivery log, a
// given-up event delivery, key rotation and deletion, signing out. Every wait is for something to
// appear (generous timeouts, no timed assertion), so the tests only get slower under CPU load.
//
// Each page is captured as a screenshot; UPDATE_SCREENSHOTS=1 writes them to docs/screenshots/ (the
// README shows them), so that an ordinary run leaves the committed PNGs alone.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { BrowserContext, Locator, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChromium, type RunningChromium } from "./helpers/chromium.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";
import { waitFor } from "./helpers/wait.js";

const wait = Number(process.env.CONSOLE_TEST_WAIT_MS ?? 60_000);
const screenshotsDir = join(import.meta.dirname, "..", "docs", "screenshots");
const updateScreenshots = process.env.UPDATE_SCREENSHOTS === "1";

let h: SampleHarness;
let chrome: RunningChromium;
let context: BrowserContext;
let page: Page;
/** Errors the page reported: script errors and console errors (CSP and Trusted Types violations among them). */
const pageProblems: string[] = [];
const shots = new Map<string, Buffer>();

async function screenshot(name: string): Promise<void> {
  // Let the fonts and pending layout settle; the screenshot waits for a stable frame itself.
  // Notices fade after a few seconds; they are not part of the page.
  // (Page functions are given as strings: this project's TypeScript has no DOM types.)
  await page.evaluate('document.getElementById("toasts")?.remove()');
  await page.evaluate("document.fonts.ready.then(() => undefined)");
  const png = await page.screenshot({ animations: "disabled", caret: "hide" });
  shots.set(name, png);
  if (updateScreenshots) {
    mkdirSync(screenshotsDir, { recursive: true });
    writeFileSync(join(screenshotsDir, `${name}.png`), png);
  }
}

/** The row of a table whose data attribute has a value. */
function row(attribute: string, value: string): Locator {
  return page.locator(`tbody tr[data-${attribute}="${value}"]`);
}

/** levelsShown reads the levels of a best-match preview: [execution ID, badge text] each. */
async function levelsShown(levels: Locator): Promise<[string | null, string | null][]> {
  const shown: [string | null, string | null][] = [];
  for (const level of await levels.all()) shown.push([await level.getAttribute("data-execution-id"), await level.locator(".badge").textContent()]);
  return shown;
}

async function targetIdByName(name: string): Promise<string> {
  const { targets } = await h.actions().listTargets({});
  const found = targets.find((t) => t.name === name);
  if (found === undefined) throw new Error(`no target named ${name}`);
  return found.id;
}

beforeAll(async () => {
  h = await startSampleHarness({
    eventWorker: { pollIntervalMs: 50, retry: { initialDelayMs: 50, maxDelayMs: 200 } },
  });
  chrome = await startChromium();
  context = await chrome.browser.newContext({ viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1, locale: "en-GB", timezoneId: "UTC" });
  page = await context.newPage();
  page.setDefaultTimeout(wait);
  page.setDefaultNavigationTimeout(wait);
  page.on("pageerror", (error) => pageProblems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    // A refused token or a missing file is logged by the browser as "Failed to load resource"; those are expected.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) pageProblems.push(`console: ${message.text()}`);
  });
}, 180_000);

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await chrome?.close();
  await h?.close();
}, 60_000);

describe("web console in chromium", { timeout: 180_000 }, () => {
  it("serves the page with its security headers at /console/", async () => {
    const response = await page.goto(`${h.server.url}/console`);
    expect(response?.status()).toBe(200);
    expect(page.url()).toBe(`${h.server.url}/console/`);
    expect(response?.headers()["content-security-policy"]).toContain("script-src 'self'");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await screenshot("login");
  });

  it("refuses a wrong token with a clear error, then signs in with the right one", async () => {
    const token = page.getByLabel("Management token");
    await token.fill("not-the-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/This token was not accepted: .*invalid bearer token.*\(Unauthenticated\)/);
    expect(await page.evaluate("sessionStorage.length")).toBe(0);

    await token.fill(h.server.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Targets" }).waitFor();
    await page.getByText("No targets yet.").waitFor();
    expect(await page.evaluate("Object.values(sessionStorage)")).toEqual([h.server.adminToken]);
  });

  it("creates a target through the form and shows its signing key once", async () => {
    await page.getByRole("button", { name: "New target" }).click();
    const dialog = page.locator('dialog[data-dialog="target"]');
    await dialog.getByLabel("Name").fill("user-added webhook");
    await dialog.getByLabel("Type").selectOption("restWebhook");
    await dialog.getByLabel("Endpoint").fill(h.targets.endpoint("/hook"));
    await dialog.getByLabel("Timeout (seconds)").fill("5");
    await dialog.getByRole("button", { name: "Create" }).click();

    const secret = page.locator('dialog[data-dialog="secret"]');
    const shown = await secret.locator("input[data-secret]").inputValue();
    const id = await targetIdByName("user-added webhook");
    const { target } = await h.actions().getTarget({ id });
    expect(shown).toBe(target!.signingKey);
    expect(target).toMatchObject({ endpoint: h.targets.endpoint("/hook"), timeout: { seconds: 5n }, targetType: { case: "restWebhook", value: { interruptOnError: false } } });
    await secret.getByRole("button", { name: "Done" }).click();
    await secret.waitFor({ state: "detached" });

    const created = row("target-id", id);
    await created.waitFor();
    expect(await created.textContent()).toContain(h.targets.endpoint("/hook"));
    // The key is not on the page any more.
    expect(await page.locator("body").textContent()).not.toContain(shown);
  });

  it("edits a target through the same form", async () => {
    const id = await targetIdByName("user-added webhook");
    await row("target-id", id).getByRole("button", { name: "Edit" }).click();
    const dialog = page.locator('dialog[data-dialog="target"]');
    expect(await dialog.getByLabel("Endpoint").inputValue()).toBe(h.targets.endpoint("/hook"));
    await dialog.getByLabel("Timeout (seconds)").fill("7.5");
    await dialog.getByLabel(/Interrupt on error/).check();
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.waitFor({ state: "detached" });
    await row("target-id", id).getByText("interrupt").waitFor();
    const { target } = await h.actions().getTarget({ id });
    expect(target).toMatchObject({
      name: "user-added webhook",
      timeout: { seconds: 7n, nanos: 500_000_000 },
      targetType: { case: "restWebhook", value: { interruptOnError: true } },
    });
  });

  it("sets an execution with ordered targets through the editor, fed by ListExecutionMethods", async () => {
    const audit = await h.actions().createTarget({
      name: "audit trail",
      targetType: { case: "restAsync", value: {} },
      endpoint: h.targets.endpoint("/audit"),
      timeout: { seconds: 5n },
    });
    const hook = await targetIdByName("user-added webhook");

    await page.getByRole("link", { name: "Executions" }).click();
    await page.getByRole("heading", { name: "Executions" }).waitFor();
    await page.getByRole("tab", { name: "Response" }).click();
    await page.getByText("No response executions.").waitFor();
    await page.getByRole("button", { name: "Set execution" }).click();

    const dialog = page.locator('dialog[data-dialog="execution"]');
    await dialog.getByLabel("Method name").selectOption("/zitadel.user.v2.UserService/AddHumanUser");
    await dialog.getByLabel("Target to add").selectOption(hook);
    await dialog.getByRole("button", { name: "Add" }).first().click();
    await dialog.getByLabel("Target to add").selectOption(audit.id);
    await dialog.getByRole("button", { name: "Add" }).first().click();
    // The audit target goes first.
    await dialog.getByRole("button", { name: "Move target 2 up" }).click();
    expect(await dialog.locator('ol[aria-label="Targets, in order"] .ordered-name').allTextContents()).toEqual(["audit trail", "user-added webhook"]);
    await screenshot("execution-editor");
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.waitFor({ state: "detached" });

    const set = row("execution-id", "response/zitadel.user.v2.UserService/AddHumanUser");
    await set.waitFor();
    expect(await set.locator(".chip").allTextContents()).toEqual(["audit trail", "user-added webhook"]);
    const { executions } = await h.actions().listExecutions({});
    expect(executions).toHaveLength(1);
    expect(executions[0]!.condition?.conditionType).toEqual({
      case: "response",
      value: expect.objectContaining({ condition: { case: "method", value: "/zitadel.user.v2.UserService/AddHumanUser" } }),
    });
    expect(executions[0]!.targets).toEqual([audit.id, hook]);
  });

  it("shows calls of the sample's UserService in the live delivery log, filtered and paused", async () => {
    await page.getByRole("link", { name: "Delivery log" }).click();
    await page.getByText("No target calls yet.").waitFor();
    await page.getByText(/^Live · updated/).waitFor();

    // A real call of the sample's UserService; its response execution calls both targets.
    await h.users().addHumanUser({ profile: { givenName: "Ada", familyName: "Lovelace" }, email: { email: "ada@example.com" } });
    await h.targets.waitFor("/hook", 1, wait);
    const hook = await targetIdByName("user-added webhook");
    // The page was not reloaded: the row comes with the live refresh.
    const calls = page.locator("tbody tr.call");
    const hookCall = calls.filter({ hasText: "user-added webhook" });
    await hookCall.waitFor();
    expect(await hookCall.textContent()).toContain("response/zitadel.user.v2.UserService/AddHumanUser");
    expect(await hookCall.locator(".badge").first().textContent()).toBe("200");
    await calls.filter({ hasText: "audit trail" }).waitFor();

    // Details of a call, with the excerpts of the payload sent and of the answer (the sample keeps them).
    await hookCall.getByRole("button", { name: /Details of the call/ }).click();
    await page.locator("tr.details-row").getByText(h.targets.endpoint("/hook")).waitFor();
    const sent = JSON.parse((await page.locator('tr.details-row pre[data-excerpt="request"]').textContent())!);
    expect(sent).toMatchObject({ fullMethod: "/zitadel.user.v2.UserService/AddHumanUser", request: { profile: { givenName: "Ada" } } });
    // A webhook's answer body is not read: the record says so.
    expect(await page.locator('tr.details-row [data-excerpt="response"]').textContent()).toMatch(/^None: the answer was empty, or not read/);

    // By status: none of these failed; both succeeded.
    await page.getByLabel("Status").selectOption("failed");
    await page.getByText("No calls match these filters.").waitFor();
    expect(page.url()).toContain("status=failed");
    await page.getByLabel("Status").selectOption("succeeded");
    await hookCall.waitFor();
    await calls.filter({ hasText: "audit trail" }).waitFor();
    await page.getByLabel("Status").selectOption("");
    await hookCall.waitFor();

    // By target: only the hook's call.
    await page.getByLabel("Target", { exact: true }).selectOption(hook);
    await page.locator("tbody tr.call").filter({ hasText: "audit trail" }).waitFor({ state: "detached" });
    expect(await page.locator("tbody tr.call").count()).toBe(1);
    // By condition (execution ID): another condition has no calls.
    await page.getByLabel("Condition (execution ID)").fill("request/zitadel.user.v2.UserService");
    await page.getByLabel("Condition (execution ID)").press("Enter");
    await page.getByText("No calls match these filters.").waitFor();
    await page.getByLabel("Condition (execution ID)").fill("response/zitadel.user.v2.UserService/AddHumanUser");
    await page.getByLabel("Condition (execution ID)").press("Enter");
    await hookCall.waitFor();

    // Paused, the page keeps what it shows while new calls are recorded; resumed, it shows them.
    await page.getByRole("button", { name: "Pause" }).click();
    await page.getByText(/^Paused/).waitFor();
    // A refresh that was already under way when paused ends first.
    await page.locator('section[aria-label="Target calls"][aria-busy="false"]').waitFor();
    await h.users().addHumanUser({ profile: { givenName: "Grace", familyName: "Hopper" }, email: { email: "grace@example.com" } });
    await h.targets.waitFor("/hook", 2, wait);
    await waitFor(async () => (await h.actions().listTargetCalls({ targetId: hook })).calls.length === 2, wait, "the second call in the delivery log");
    expect(await page.locator("tbody tr.call").count()).toBe(1);
    await page.getByRole("button", { name: "Resume" }).click();
    await page.locator("tbody tr.call").nth(1).waitFor();
    expect(await page.locator("tbody tr.call").count()).toBe(2);
  });

  it("lists a given-up event delivery with its payload on the failed deliveries page", async () => {
    const rejecting = await h.actions().createTarget({
      name: "crm sync",
      targetType: { case: "restWebhook", value: { interruptOnError: false } },
      endpoint: h.targets.endpoint("/reject"),
      timeout: { seconds: 5n },
    });
    h.targets.route("/reject", { status: 400, body: { error: "unknown tenant" } });
    await h.actions().setExecution({
      condition: { conditionType: { case: "event", value: { condition: { case: "event", value: "user.human.added" } } } },
      targets: [rejecting.id],
    });
    const { userId } = await h.users().addHumanUser({ profile: { givenName: "Alan", familyName: "Turing" }, email: { email: "alan@example.com" } });
    // A 400 is given up at once.
    await waitFor(async () => (await h.actions().listFailedEventDeliveries({})).deliveries.length === 1, wait, "the given-up delivery");

    await page.getByRole("link", { name: "Failed deliveries" }).click();
    await page.getByRole("heading", { name: "Failed deliveries" }).waitFor();
    const failed = page.locator("tbody tr[data-delivery-id]");
    await failed.waitFor();
    const text = await failed.textContent();
    expect(text).toContain("user.human.added");
    expect(text).toContain("crm sync");
    expect(text).toContain(userId);
    expect(text).toMatch(/400/);
    await failed.getByRole("button", { name: /Payload of the delivery/ }).click();
    const payload = page.locator("tr.details-row pre.payload");
    await payload.waitFor();
    expect(JSON.parse((await payload.textContent())!)).toMatchObject({ aggregateID: userId, event_type: "user.human.added" });
    await screenshot("failed-deliveries");
  });

  it("retries a given-up delivery once the target accepts it, and it is delivered", async () => {
    const delivered = (await h.targets.waitFor("/reject", 1, wait)).length;
    h.targets.route("/reject", { status: 200, body: {} });
    const failed = page.locator("tbody tr[data-delivery-id]");
    const id = await failed.getAttribute("data-delivery-id");
    await failed.getByRole("button", { name: /^Retry/ }).click();
    await page.getByText("No failed deliveries.").waitFor();
    const calls = await h.targets.waitFor("/reject", delivered + 1, wait);
    expect(JSON.parse(calls[delivered]!.body)).toMatchObject({ event_type: "user.human.added" });
    expect((await h.actions().listFailedEventDeliveries({})).deliveries).toEqual([]);
    // A second retry of the same delivery finds nothing: each given-up delivery is retried once.
    expect((await h.actions().retryFailedEventDeliveries({ id: id! })).retried).toBe(0);
    // The delivery log shows the successful attempt.
    const crm = await targetIdByName("crm sync");
    await waitFor(async () => (await h.actions().listTargetCalls({ targetId: crm })).calls.some((c) => c.status === 200), wait, "the retried delivery in the log");
  });

  it("sets an event group execution that includes another event execution", async () => {
    await page.getByRole("link", { name: "Executions" }).click();
    await page.getByRole("tab", { name: "Event" }).click();
    await row("execution-id", "event/user.human.added").waitFor();
    await page.getByRole("button", { name: "Set execution" }).click();
    const dialog = page.locator('dialog[data-dialog="execution"]');
    await dialog.getByRole("radio", { name: "Event group" }).check();
    await dialog.getByLabel("Event group name", { exact: true }).fill("user.human");
    await dialog.getByLabel("Execution to include").selectOption("event/user.human.added");
    await dialog.getByRole("button", { name: "Add" }).nth(1).click();
    expect(await dialog.locator('ol[aria-label="Includes, in order"] .ordered-name').allTextContents()).toEqual(["user.human.added"]);
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.waitFor({ state: "detached" });
    const group = row("execution-id", "event/user.human.*");
    await group.waitFor();
    expect(await group.locator(".chip").allTextContents()).toEqual(["user.human.added"]);
    const { executions } = await h.actions().listExecutions({});
    const eventCondition = (c: (typeof executions)[number]["condition"]) => (c?.conditionType.case === "event" ? c.conditionType.value.condition : undefined);
    const set = executions.find((e) => eventCondition(e.condition)?.case === "group");
    expect(eventCondition(set?.condition)).toEqual({ case: "group", value: "user.human" });
    expect(set?.targets).toEqual([]);
    expect(set?.includes.map(eventCondition)).toEqual([{ case: "event", value: "user.human.added" }]);
  });

  it("captures the targets, executions and delivery log pages", async () => {
    await page.getByRole("link", { name: "Targets" }).click();
    await row("target-name", "crm sync").waitFor();
    await screenshot("targets");

    // One more response execution, for the picture: the service's, including the method's.
    await h.actions().setExecution({
      condition: { conditionType: { case: "response", value: { condition: { case: "service", value: "zitadel.user.v2.UserService" } } } },
      targets: [await targetIdByName("crm sync")],
      includes: [{ conditionType: { case: "response", value: { condition: { case: "method", value: "/zitadel.user.v2.UserService/AddHumanUser" } } } }],
    });
    await page.getByRole("link", { name: "Executions" }).click();
    await page.getByRole("tab", { name: "Response" }).click();
    await row("execution-id", "response/zitadel.user.v2.UserService").waitFor();
    await row("execution-id", "response/zitadel.user.v2.UserService/AddHumanUser").waitFor();
    await screenshot("executions");

    await page.goto(`${h.server.url}/console/#/deliveries`);
    // Three RPC calls (two users, two targets each) and the failed event delivery.
    await waitFor(async () => (await page.locator("tbody tr.call").count()) >= 5, wait, "five calls in the delivery log");
    await page.locator("tbody tr.call-failed").first().getByRole("button", { name: /Details of the call/ }).click();
    await page.locator("tr.details-row").waitFor();
    await screenshot("delivery-log");
  });

  it("explains which execution runs for a method, with the includes expanded and the levels it beat", async () => {
    await page.getByRole("link", { name: "Executions" }).click();
    await page.getByRole("tab", { name: "Response" }).click();
    const preview = page.locator('section[aria-label="Best match"]');
    await preview.getByLabel("Method name").selectOption("/zitadel.user.v2.UserService/AddHumanUser");
    await preview.getByRole("button", { name: /^Explain/ }).click();
    const levels = preview.locator("ol.levels li");
    await levels.first().waitFor();
    expect(await levelsShown(levels)).toEqual([
      ["response/zitadel.user.v2.UserService/AddHumanUser", "runs"],
      ["response/zitadel.user.v2.UserService", "beaten"],
      ["response", "not set"],
    ]);
    expect(await preview.locator("ol.explained-targets strong").allTextContents()).toEqual(["audit trail", "user-added webhook"]);

    // Another method of the service: the service's execution runs, then the method execution it includes.
    await preview.getByLabel("Method name").selectOption("/zitadel.user.v2.UserService/GetUserByID");
    await preview.getByRole("button", { name: /^Explain/ }).click();
    await preview.getByText("Runs response/zitadel.user.v2.UserService,", { exact: false }).waitFor();
    expect(await preview.locator("ol.explained-targets strong").allTextContents()).toEqual(["crm sync", "audit trail", "user-added webhook"]);
    expect(await preview.locator("ol.explained-targets li").nth(1).textContent()).toContain("via response/zitadel.user.v2.UserService/AddHumanUser");
    expect((await levelsShown(levels)).map(([, shown]) => shown)).toEqual(["not set", "runs", "not set"]);
    await screenshot("best-match");
  });

  it("tests a target with a sample payload and shows the answer, marked as a test in the delivery log", async () => {
    await page.getByRole("link", { name: "Targets" }).click();
    const hook = await targetIdByName("user-added webhook");
    const before = (await h.targets.waitFor("/hook", 1, wait)).length;
    await row("target-id", hook).getByRole("button", { name: /^Test/ }).click();
    await page.getByRole("heading", { name: "Test target" }).waitFor();
    expect(page.url()).toContain(`#/test?target=${hook}`);
    await page.getByLabel("Condition type").selectOption("response");
    await page.getByLabel("Method name").selectOption("/zitadel.user.v2.UserService/AddHumanUser");
    await page.getByRole("button", { name: "Send test" }).click();
    const result = page.locator('section[aria-label="Result"]');
    await result.getByText("The target answered").waitFor();
    expect(await result.locator("h2 .badge").textContent()).toBe("200");
    const payload = JSON.parse((await result.locator('pre[data-excerpt="payload"]').textContent())!);
    expect(payload).toMatchObject({ fullMethod: "/zitadel.user.v2.UserService/AddHumanUser" });
    const received = await h.targets.waitFor("/hook", before + 1, wait);
    expect(received[before]!.headers["zitadel-signature"]).toBeTruthy();
    expect(JSON.parse(received[before]!.body)).toMatchObject({ fullMethod: "/zitadel.user.v2.UserService/AddHumanUser" });
    expect(page.url()).toContain("type=response");

    // A call target whose answer is not the message it would replace.
    const call = await h.actions().createTarget({
      name: "profile fixer",
      targetType: { case: "restCall", value: { interruptOnError: true } },
      endpoint: h.targets.endpoint("/fixer"),
      timeout: { seconds: 5n },
    });
    h.targets.route("/fixer", { status: 200, body: { profile: "not an object" } });
    await page.goto(`${h.server.url}/console/#/test?target=${call.id}&type=request&value=${encodeURIComponent("/zitadel.user.v2.UserService/AddHumanUser")}`);
    await page.getByRole("heading", { name: "Test target" }).waitFor();
    expect(await page.getByLabel("Method name").inputValue()).toBe("/zitadel.user.v2.UserService/AddHumanUser");
    await page.getByRole("button", { name: "Send test" }).click();
    await result.getByText("answer does not parse", { exact: true }).waitFor();
    await result.getByRole("heading", { name: /^The answer does not parse/ }).waitFor();
    expect(await result.locator('pre[data-excerpt="answer"]').textContent()).toContain("not an object");
    await screenshot("test-target");

    await result.getByRole("link", { name: "See the call in the delivery log" }).click();
    const testCall = page.locator("tbody tr.call").filter({ hasText: "profile fixer" });
    await testCall.waitFor();
    expect(await testCall.locator(".badge").allTextContents()).toContain("test");
    await h.actions().deleteTarget({ id: call.id });
  });

  it("rotates a target's signing key and shows the new key once", async () => {
    await page.getByRole("link", { name: "Targets" }).click();
    const id = await targetIdByName("user-added webhook");
    const before = (await h.actions().getTarget({ id })).target!.signingKey;
    await row("target-id", id).getByRole("button", { name: /^Rotate key/ }).click();
    await page.locator('dialog[data-dialog="confirm"]').getByRole("button", { name: "Rotate key" }).click();
    const secret = page.locator('dialog[data-dialog="secret"]');
    const shown = await secret.locator("input[data-secret]").inputValue();
    const after = (await h.actions().getTarget({ id })).target!.signingKey;
    expect(shown).toBe(after);
    expect(after).not.toBe(before);
    await secret.getByRole("button", { name: "Done" }).click();
    await secret.waitFor({ state: "detached" });
  });

  it("deletes a target after confirmation, removing it from its execution", async () => {
    const id = await targetIdByName("audit trail");
    await row("target-id", id).getByRole("button", { name: "Delete" }).click();
    const confirm = page.locator('dialog[data-dialog="confirm"]');
    expect(await confirm.textContent()).toContain("audit trail");
    await confirm.getByRole("button", { name: "Delete" }).click();
    await row("target-id", id).waitFor({ state: "detached" });
    const { targets } = await h.actions().listTargets({});
    expect(targets.map((t) => t.name).sort()).toEqual(["crm sync", "user-added webhook"]);
    const { executions } = await h.actions().listExecutions({});
    const method = executions.find((e) => e.condition?.conditionType.case === "response" && e.condition.conditionType.value.condition.case === "method");
    expect(method?.targets).toEqual([await targetIdByName("user-added webhook")]);
  });

  it("deletes an execution by setting an empty list, which empties the execution including it", async () => {
    await page.getByRole("link", { name: "Executions" }).click();
    await page.getByRole("tab", { name: "Event" }).click();
    const event = row("execution-id", "event/user.human.added");
    await event.getByRole("button", { name: "Delete" }).click();
    await page.locator('dialog[data-dialog="confirm"]').getByRole("button", { name: "Delete" }).click();
    // The group execution only included the deleted one, so it goes too.
    await page.getByText("No event executions.").waitFor();
    const { executions } = await h.actions().listExecutions({});
    expect(executions.map((e) => e.condition?.conditionType.case)).toEqual(["response", "response"]);
  });

  it("goes back to the sign-in page when the stored token stops working, and signs out", async () => {
    await page.evaluate('sessionStorage.setItem(Object.keys(sessionStorage)[0], "a-stale-token")');
    await page.reload();
    await page.getByText("The ActionService no longer accepts the token: sign in again.").waitFor();
    expect(await page.evaluate("sessionStorage.length")).toBe(0);

    await page.getByLabel("Management token").fill(h.server.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByText("Signed out.").waitFor();
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
  });

  it("took a PNG of each page and reported no script, CSP or Trusted Types error", () => {
    expect([...shots.keys()].sort()).toEqual(["best-match", "delivery-log", "execution-editor", "executions", "failed-deliveries", "login", "targets", "test-target"]);
    for (const [name, png] of shots) {
      expect(png.subarray(1, 4).toString("latin1"), name).toBe("PNG");
      expect(png.readUInt32BE(16), `${name} width`).toBe(1280);
    }
    expect(pageProblems).toEqual([]);
  });
});
