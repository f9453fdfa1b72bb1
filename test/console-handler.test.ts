// The console's Node handler over real loopback HTTP/1.1 and HTTP/2: the page and its files with their
// content types, caching, ETags, gzip, security headers, HEAD, 404/405, no way out of the assets folder,
// mounting under other paths, and the checks of its options.
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { consoleAssetsDir, createConsoleHandler, type ConsoleHandlerOptions } from "../src/console/index.js";
import { codeOf } from "./helpers/wait.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A server with the handler; paths outside the console answer 418 through `next`. */
async function serve(options?: ConsoleHandlerOptions): Promise<string> {
  const handler = createConsoleHandler(options);
  const server = http.createServer((req, res) =>
    handler(req, res, () => {
      res.writeHead(418);
      res.end("next");
    }),
  );
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A raw request: the path is sent exactly as given (fetch would normalize "..", "%2e" and "\\"). */
function request(base: string, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path, method: options.method ?? "GET", headers: options.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** The URLs of the stylesheet and scripts the page links to. */
function linkedAssets(html: string): string[] {
  return [...html.matchAll(/(?:href|src)="([^"]+)"/g)].map((m) => m[1]!);
}

describe("console handler", () => {
  it("redirects the base path to the page, which links its files under a versioned path", async () => {
    const base = await serve();
    const redirect = await request(base, "/console?x=1");
    expect(redirect.status).toBe(308);
    expect(redirect.headers.location).toBe("/console/?x=1");

    const page = await request(base, "/console/");
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(page.headers["cache-control"]).toBe("no-cache");
    const html = page.body.toString("utf8");
    expect(html).not.toContain("{{");
    expect(html).toContain('<meta name="connect-actions-api" content="">');
    const links = linkedAssets(html);
    expect(links).toContain(links.find((l) => /^\/console\/assets\/[0-9a-f]{12}\/app\.js$/.test(l)));
    expect(links.some((l) => l.endsWith("/console.css"))).toBe(true);
    for (const link of links) {
      const file = await request(base, link);
      expect(file.status, link).toBe(200);
      expect(file.headers["cache-control"], link).toBe("public, max-age=31536000, immutable");
    }
    expect((await request(base, "/console/index.html")).body.toString("utf8")).toBe(html);
  });

  it("serves each file with its content type, a strict CSP and the other security headers", async () => {
    const base = await serve();
    const version = /\/console\/assets\/([0-9a-f]{12})\//.exec((await request(base, "/console/")).body.toString("utf8"))![1]!;
    const cases: [string, string][] = [
      ["app.js", "text/javascript; charset=utf-8"],
      ["pages/targets.js", "text/javascript; charset=utf-8"],
      ["console.css", "text/css; charset=utf-8"],
      ["favicon.svg", "image/svg+xml"],
    ];
    for (const [name, type] of cases) {
      const file = await request(base, `/console/assets/${version}/${name}`);
      expect(file.status, name).toBe(200);
      expect(file.headers["content-type"], name).toBe(type);
      expect(file.body.equals(readFileSync(join(consoleAssetsDir, name))), name).toBe(true);
      expect(Number(file.headers["content-length"]), name).toBe(file.body.length);
      expect(file.headers["x-content-type-options"]).toBe("nosniff");
    }
    const page = await request(base, "/console/");
    const csp = page.headers["content-security-policy"]!;
    for (const directive of [
      "default-src 'none'",
      "script-src 'self'",
      "style-src 'self'",
      "connect-src 'self'",
      "base-uri 'none'",
      "form-action 'none'",
      "frame-ancestors 'none'",
      "require-trusted-types-for 'script'",
    ]) {
      expect(csp).toContain(directive);
    }
    expect(csp).not.toContain("unsafe");
    expect(page.headers["x-frame-options"]).toBe("DENY");
    expect(page.headers["referrer-policy"]).toBe("no-referrer");
  });

  it("answers HEAD with the headers of GET and no body", async () => {
    const base = await serve();
    const get = await request(base, "/console/");
    const head = await request(base, "/console/", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers["content-length"]).toBe(get.headers["content-length"]);
    expect(head.headers.etag).toBe(get.headers.etag);
    expect(head.headers["content-type"]).toBe(get.headers["content-type"]);
  });

  it("revalidates with ETags (304) and serves gzip to clients that accept it", async () => {
    const base = await serve();
    const html = (await request(base, "/console/")).body.toString("utf8");
    const app = linkedAssets(html).find((l) => l.endsWith("/app.js"))!;
    const plain = await request(base, app);
    const again = await request(base, app, { headers: { "if-none-match": plain.headers.etag! } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(plain.headers.etag);

    const zipped = await request(base, app, { headers: { "accept-encoding": "br, gzip" } });
    expect(zipped.headers["content-encoding"]).toBe("gzip");
    expect(zipped.headers.vary).toBe("Accept-Encoding");
    expect(zipped.headers.etag).not.toBe(plain.headers.etag);
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
    const refused = await request(base, app, { headers: { "accept-encoding": "gzip;q=0, identity" } });
    expect(refused.headers["content-encoding"]).toBeUndefined();
    expect(refused.body.equals(plain.body)).toBe(true);
    // A changed file (another ETag) is sent again.
    expect((await request(base, app, { headers: { "if-none-match": '"other"' } })).status).toBe(200);
  });

  it("serves the files of another version, but only revalidated, and 404 for unknown files", async () => {
    const base = await serve();
    const old = await request(base, "/console/assets/000000000000/app.js");
    expect(old.status).toBe(200);
    expect(old.headers["cache-control"]).toBe("no-cache");
    for (const path of ["/console/nope.js", "/console/assets/", "/console/assets/app.js", "/console/assets/000000000000/missing.js", "/console/assets/000000000000/index.html", "/console/app.js"]) {
      const answer = await request(base, path);
      expect(answer.status, path).toBe(404);
      expect(answer.headers["content-type"], path).toBe("text/plain; charset=utf-8");
      expect(answer.headers["content-security-policy"], path).toContain("default-src 'none'");
    }
  });

  it("never serves a file outside the assets folder, however the path is written", async () => {
    const base = await serve();
    const version = /\/console\/assets\/([0-9a-f]{12})\//.exec((await request(base, "/console/")).body.toString("utf8"))![1]!;
    const prefix = `/console/assets/${version}/`;
    const attempts = [
      `${prefix}../console-handler.ts`,
      `${prefix}../../console/console-handler.ts`,
      `${prefix}%2e%2e/console-handler.ts`,
      `${prefix}%2e%2e%2fconsole-handler.ts`,
      `${prefix}..%2fconsole-handler.ts`,
      `${prefix}..\\console-handler.ts`,
      `${prefix}pages/../../console-handler.ts`,
      `${prefix}/etc/passwd`,
      `${prefix}.hidden`,
      `/console/../package.json`,
      `/console/assets/..%2f..%2f..%2fpackage.json/app.js`,
    ];
    for (const path of attempts) {
      const answer = await request(base, path);
      expect(answer.status, path).toBe(404);
      expect(answer.body.toString("utf8"), path).toBe("Not Found\n");
    }
  });

  it("answers 405 to methods other than GET and HEAD, and passes other paths to next", async () => {
    const base = await serve();
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS"]) {
      const answer = await request(base, "/console/", { method });
      expect(answer.status, method).toBe(405);
      expect(answer.headers.allow).toBe("GET, HEAD");
    }
    expect((await request(base, "/v2/actions/targets/search", { method: "POST" })).status).toBe(418);
    expect((await request(base, "/consoles")).status).toBe(418);
    expect((await request(base, "/")).status).toBe(418);
  });

  it("mounts under another base path, or the root, and puts a cross-origin API into the page and its CSP", async () => {
    const base = await serve({ basePath: "/ops/actions/", apiBaseUrl: "https://api.example.com/zitadel/" });
    const page = await request(base, "/ops/actions/");
    expect(page.status).toBe(200);
    const html = page.body.toString("utf8");
    expect(html).toContain('<meta name="connect-actions-api" content="https://api.example.com/zitadel">');
    expect(linkedAssets(html).every((l) => l.startsWith("/ops/actions/assets/"))).toBe(true);
    expect(page.headers["content-security-policy"]).toContain("connect-src 'self' https://api.example.com;");
    expect((await request(base, "/console/")).status).toBe(418);

    const root = await serve({ basePath: "/", apiBaseUrl: "/api" });
    const rootPage = await request(root, "/");
    expect(rootPage.status).toBe(200);
    expect(rootPage.body.toString("utf8")).toContain('content="/api"');
    expect(rootPage.headers["content-security-policy"]).toContain("connect-src 'self';");
    expect((await request(root, "/anything")).status).toBe(404);
  });

  it("escapes the API base URL in the page", async () => {
    const handler = createConsoleHandler({ apiBaseUrl: 'https://api.example.com/a"b<c' });
    const html = await new Promise<string>((resolve) => {
      handler(
        { url: "/console/", method: "GET", headers: {} },
        {
          writeHead: () => undefined,
          end: (chunk?: Uint8Array) => resolve(Buffer.from(chunk ?? new Uint8Array()).toString("utf8")),
        },
      );
    });
    expect(html).toContain('content="https://api.example.com/a%22b%3Cc"');
  });

  it("works on an HTTP/2 server", async () => {
    const handler = createConsoleHandler();
    const server = http2.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const session = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    try {
      const { status, type, body } = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
        const stream = session.request({ ":path": "/console/" });
        let status = 0;
        let type = "";
        let body = "";
        stream.on("response", (headers) => {
          status = Number(headers[":status"]);
          type = String(headers["content-type"]);
        });
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => (body += chunk));
        stream.on("end", () => resolve({ status, type, body }));
        stream.on("error", reject);
      });
      expect(status).toBe(200);
      expect(type).toBe("text/html; charset=utf-8");
      expect(body).toContain('<div id="app">');
    } finally {
      session.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("refuses malformed options and a missing assets folder", async () => {
    for (const basePath of ["console", "/a b", "/a/../b", "/a?b", "//evil"]) {
      expect(await codeOf(Promise.resolve().then(() => createConsoleHandler({ basePath }))), basePath).toBe(Code.InvalidArgument);
    }
    for (const apiBaseUrl of ["ftp://example.com", "//evil.example", "javascript:alert(1)", "https://u:p@example.com", "https://example.com/?q", "not a url"]) {
      expect(await codeOf(Promise.resolve().then(() => createConsoleHandler({ apiBaseUrl }))), apiBaseUrl).toBe(Code.InvalidArgument);
    }
    const empty = mkdtempSync(join(tmpdir(), "console-assets-"));
    expect(await codeOf(Promise.resolve().then(() => createConsoleHandler({ assetsDir: join(empty, "missing") })))).toBe(Code.FailedPrecondition);
    expect(await codeOf(Promise.resolve().then(() => createConsoleHandler({ assetsDir: empty })))).toBe(Code.FailedPrecondition);
  });

  it("serves a given assets folder, skipping hidden files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "console-assets-"));
    writeFileSync(join(dir, "index.html"), '<link href="{{assets}}/a.css">');
    writeFileSync(join(dir, "a.css"), "body{}");
    writeFileSync(join(dir, ".env"), "SECRET=1");
    mkdirSync(join(dir, ".git"));
    writeFileSync(join(dir, ".git", "config"), "x");
    const base = await serve({ assetsDir: dir });
    const html = (await request(base, "/console/")).body.toString("utf8");
    const css = linkedAssets(html)[0]!;
    expect((await request(base, css)).body.toString("utf8")).toBe("body{}");
    const prefix = css.slice(0, -"a.css".length);
    expect((await request(base, `${prefix}.env`)).status).toBe(404);
    expect((await request(base, `${prefix}.git/config`)).status).toBe(404);
  });
});
