import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";

/**
 * consoleAssetsDir is the folder of the console's static files: "assets" next
 * to this module, in src/console/ when run from the sources (tsx) and in the
 * build output's console/ folder once `scripts/copy-console-assets.mjs` has
 * copied it there (see `npm run build`).
 */
export const consoleAssetsDir: string = fileURLToPath(new URL("./assets/", import.meta.url));

/**
 * ConsoleAsset is one static file of the console, read into memory once.
 */
export interface ConsoleAsset {
  /** Path relative to the assets folder, with "/" separators: "pages/targets.js". */
  readonly name: string;
  readonly contentType: string;
  readonly body: Buffer;
  /** The body compressed with gzip, when that makes it smaller. */
  readonly gzip: Buffer | undefined;
  /** Strong ETag of the body (the gzip variant appends "-gz" inside the quotes). */
  readonly etag: string;
}

const contentTypes: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  svg: "image/svg+xml",
  png: "image/png",
  ico: "image/x-icon",
  json: "application/json",
  txt: "text/plain; charset=utf-8",
};

/**
 * assetNamePattern is what a served file name may look like: segments of
 * letters, digits, ".", "_" and "-", each starting with a letter or digit, so
 * that no request path can name "..", a hidden file or a backslash.
 */
export const assetNamePattern = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)*$/;

/**
 * asset builds a ConsoleAsset from a name and its contents.
 */
export function asset(name: string, body: Buffer): ConsoleAsset {
  const extension = name.slice(name.lastIndexOf(".") + 1).toLowerCase();
  const contentType = contentTypes[extension] ?? "application/octet-stream";
  const compressible = contentType.startsWith("text/") || contentType === "image/svg+xml" || contentType === "application/json";
  const zipped = compressible && body.length > 512 ? gzipSync(body, { level: 9 }) : undefined;
  const hash = createHash("sha256").update(body).digest("base64url").slice(0, 22);
  return {
    name,
    contentType,
    body,
    gzip: zipped !== undefined && zipped.length < body.length ? zipped : undefined,
    etag: `"${hash}"`,
  };
}

/**
 * loadConsoleAssets reads every file below `dir` whose relative path matches
 * assetNamePattern (others, such as hidden files, are skipped). Throws a
 * ConnectError with Code.FailedPrecondition when the folder or its
 * index.html is missing, which happens when a build did not copy the assets.
 */
export function loadConsoleAssets(dir: string = consoleAssetsDir): Map<string, ConsoleAsset> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ConnectError(
      `console assets not found at ${dir}: the build must copy src/console/assets next to the compiled console handler (scripts/copy-console-assets.mjs)`,
      Code.FailedPrecondition,
    );
  }
  const assets = new Map<string, ConsoleAsset>();
  const walk = (folder: string) => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      const name = relative(dir, path).split(sep).join("/");
      if (!assetNamePattern.test(name)) continue;
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) assets.set(name, asset(name, readFileSync(path)));
    }
  };
  walk(dir);
  if (!assets.has("index.html")) {
    throw new ConnectError(`console assets at ${dir} have no index.html`, Code.FailedPrecondition);
  }
  return assets;
}

/**
 * assetsVersion returns a short hash of all assets (names and contents), used
 * in the URLs of the assets so that browsers may cache them for good.
 */
export function assetsVersion(assets: ReadonlyMap<string, ConsoleAsset>): string {
  const hash = createHash("sha256");
  for (const name of [...assets.keys()].sort()) {
    hash.update(name).update("\0").update(assets.get(name)!.etag).update("\0");
  }
  return hash.digest("hex").slice(0, 12);
}
