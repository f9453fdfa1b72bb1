#!/usr/bin/env node
// Copies the web console's static files (src/console/assets/) next to the compiled console handler, where
// createConsoleHandler looks for them: run after `tsc` in `npm run build`.
//
//   node scripts/copy-console-assets.mjs [outDir]     (default "dist")
//
// It finds <outDir>/**/console/console-handler.js (so it works whatever rootDir the build uses, e.g.
// dist/console/ or dist/src/console/) and replaces <that folder>/assets with a fresh copy. It fails when
// the compiled handler is missing or found more than once.
import { cpSync, existsSync, readdirSync, rmSync } from "node:fs";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "src", "console", "assets");
const outDir = resolve(process.argv[2] ?? join(root, "dist"));

function find(dir, found = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) find(path, found);
    else if (entry.name === "console-handler.js" && basename(dir) === "console") found.push(dir);
  }
  return found;
}

if (!existsSync(outDir)) {
  console.error(`copy-console-assets: ${outDir} does not exist; run tsc first`);
  process.exit(1);
}
const targets = find(outDir);
if (targets.length !== 1) {
  console.error(`copy-console-assets: expected one console/console-handler.js below ${outDir}, found ${targets.length}${targets.length ? `: ${targets.join(", ")}` : ""}`);
  process.exit(1);
}
const destination = join(targets[0], "assets");
rmSync(destination, { recursive: true, force: true });
cpSync(source, destination, { recursive: true, filter: (path) => !relative(source, path).split(/[\\/]/).some((part) => part.startsWith(".")) });
console.log(`copy-console-assets: ${relative(root, source)} -> ${relative(root, destination) || destination}`);
