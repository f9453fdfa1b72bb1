// The console from a build: the handler compiled by tsc into an output folder, the assets copied next to it
// by scripts/copy-console-assets.mjs (what `npm run build` runs), then served by plain Node (no tsx, no
// vite) from the compiled JavaScript.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "..");
let work: string;

beforeAll(() => {
  // Inside the repository, so that the compiled files resolve @connectrpc/connect from its node_modules.
  mkdirSync(join(root, ".tmp"), { recursive: true });
  work = mkdtempSync(join(root, ".tmp", "console-build-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("console build", () => {
  it("serves the page and its files from the compiled handler once the assets are copied", { timeout: 120_000 }, async () => {
    writeFileSync(
      join(work, "tsconfig.json"),
      JSON.stringify({
        extends: join(root, "tsconfig.json"),
        compilerOptions: { noEmit: false, outDir: join(work, "dist"), rootDir: root },
        include: [join(root, "src", "console", "index.ts")],
      }),
    );
    await run(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", join(work, "tsconfig.json")], { cwd: root });
    const compiled = join(work, "dist", "src", "console");
    expect(existsSync(join(compiled, "console-handler.js"))).toBe(true);

    // Without the assets the handler refuses to start, naming the script that copies them.
    const serve = `
      const { createConsoleHandler } = await import(${JSON.stringify(pathToFileURL(join(compiled, "index.js")).href)});
      const http = await import("node:http");
      let handler;
      try { handler = createConsoleHandler(); } catch (e) { console.log(JSON.stringify({ error: e.message })); process.exit(0); }
      const server = http.createServer(handler).listen(0, "127.0.0.1", async () => {
        const base = "http://127.0.0.1:" + server.address().port;
        const page = await fetch(base + "/console/");
        const html = await page.text();
        const app = html.match(/src="([^"]+app\\.js)"/)[1];
        const script = await fetch(base + app);
        console.log(JSON.stringify({ page: page.status, app: script.status, type: script.headers.get("content-type"), body: await script.text() }));
        server.close();
      });`;
    const before = JSON.parse((await run(process.execPath, ["--input-type=module", "-e", serve], { cwd: root })).stdout);
    expect(before.error).toMatch(/console assets not found at .*copy-console-assets\.mjs/);

    const copy = await run(process.execPath, [join(root, "scripts", "copy-console-assets.mjs"), join(work, "dist")], { cwd: root });
    expect(copy.stdout).toContain("-> ");
    const after = JSON.parse((await run(process.execPath, ["--input-type=module", "-e", serve], { cwd: root })).stdout);
    expect(after).toMatchObject({ page: 200, app: 200, type: "text/javascript; charset=utf-8" });
    expect(after.body).toBe(readFileSync(join(root, "src", "console", "assets", "app.js"), "utf8"));

    // Run again: the copy is replaced, not nested.
    await run(process.execPath, [join(root, "scripts", "copy-console-assets.mjs"), join(work, "dist")], { cwd: root });
    expect(existsSync(join(compiled, "assets", "assets"))).toBe(false);
  });

  it("fails when the output folder has no compiled handler", async () => {
    const empty = mkdtempSync(join(work, "empty-"));
    const failure = await run(process.execPath, [join(root, "scripts", "copy-console-assets.mjs"), empty], { cwd: root }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toContain("expected one console/console-handler.js");
  });
});
