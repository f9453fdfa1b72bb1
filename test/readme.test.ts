// The README's TypeScript is the examples/ folder, verbatim: `npm run typecheck` compiles every example (through
// tsconfig paths, as the package's names), and .ci/consumer compiles and runs some against the packed package.
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
const blocks = [...readme.matchAll(/(?:<!-- (examples\/[\w.-]+) -->\n)?```ts\n([\s\S]*?)```\n/g)];

describe("README", () => {
  it("has TypeScript blocks only from examples/, each naming its file", () => {
    expect(blocks.length).toBeGreaterThan(5);
    for (const [block, file] of blocks) {
      expect(file, `a TypeScript block without its example file:\n${block.slice(0, 200)}`).toBeDefined();
    }
  });

  it.each(blocks.filter(([, file]) => file !== undefined).map(([, file, code]) => [file!, code!]))("shows %s verbatim", (file, code) => {
    expect(code).toBe(readFileSync(new URL(`../${file}`, import.meta.url), "utf8"));
  });

  it("shows every example", () => {
    const shown = new Set(blocks.map(([, file]) => file));
    for (const file of readdirSync(new URL("../examples", import.meta.url))) {
      expect(shown.has(`examples/${file}`), `examples/${file} is not in the README`).toBe(true);
    }
  });
});
