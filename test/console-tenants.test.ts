// The web console per instance, in Debian's headless chromium: the console calls the ActionService on its
// own origin, so the host it is opened on decides the instance; each host has its own sign-in (the token
// stays in that origin's sessionStorage), an instance token is refused on another instance's host, and
// each console shows its own instance's targets only. Chromium sends *.localhost to the loopback address.
import type { BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChromium, type RunningChromium } from "./helpers/chromium.js";
import { type SampleHarness, startSampleHarness } from "./helpers/sample-harness.js";

const wait = Number(process.env.CONSOLE_TEST_WAIT_MS ?? 60_000);

let h: SampleHarness;
let chrome: RunningChromium;
let context: BrowserContext;
let page: Page;
const pageProblems: string[] = [];

beforeAll(async () => {
  h = await startSampleHarness({ instanceTokens: { "a.localhost": "console-token-a", "b.localhost": "console-token-b" } });
  // A target in each instance, made through the store: the console must show only its own.
  const target = (name: string) => ({ name, type: "webhook" as const, endpoint: h.targets.endpoint(`/${name}`), timeoutMs: 5000 });
  await h.server.actionStore.forInstance("a.localhost").createTarget(target("only-in-a"));
  await h.server.actionStore.forInstance("b.localhost").createTarget(target("only-in-b"));
  await h.server.store.createTarget(target("only-in-default"));
  chrome = await startChromium();
  context = await chrome.browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-GB", timezoneId: "UTC" });
  page = await context.newPage();
  page.setDefaultTimeout(wait);
  page.setDefaultNavigationTimeout(wait);
  page.on("pageerror", (error) => pageProblems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) pageProblems.push(`console: ${message.text()}`);
  });
}, 180_000);

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await chrome?.close();
  await h?.close();
}, 60_000);

const consoleAt = (host: string) => `http://${host}:${h.server.port}/console/`;

async function signIn(token: string): Promise<void> {
  await page.getByLabel("Management token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
}

describe("web console per instance", { timeout: 180_000 }, () => {
  it("names the instance's host on the sign-in page and refuses another instance's token there", async () => {
    await page.goto(consoleAt("b.localhost"));
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    expect(await page.locator(".login-instance").textContent()).toBe(`Instance: b.localhost:${h.server.port}`);
    await signIn("console-token-a");
    const alert = page.getByRole("alert");
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/This token does not manage the instance of b\.localhost:\d+: .*\(PermissionDenied\)/);
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
  });

  it("shows b's targets only, signed in with b's token", async () => {
    await signIn("console-token-b");
    await page.getByRole("heading", { name: "Targets" }).waitFor();
    await page.getByText("only-in-b", { exact: true }).waitFor();
    expect(await page.getByText("only-in-a", { exact: true }).count()).toBe(0);
    expect(await page.getByText("only-in-default", { exact: true }).count()).toBe(0);
    expect(await page.locator(".api-origin").textContent()).toBe(`b.localhost:${h.server.port}`);
  });

  it("needs its own sign-in on a's host, and shows a's targets only there, also with the system token", async () => {
    await page.goto(consoleAt("a.localhost"));
    // Another origin: b's token is not in this one's sessionStorage.
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await signIn(h.server.adminToken);
    await page.getByRole("heading", { name: "Targets" }).waitFor();
    await page.getByText("only-in-a", { exact: true }).waitFor();
    expect(await page.getByText("only-in-b", { exact: true }).count()).toBe(0);
    expect(await page.getByText("only-in-default", { exact: true }).count()).toBe(0);
  });

  it("reported no script, CSP or Trusted Types errors", () => {
    expect(pageProblems).toEqual([]);
  });
});
