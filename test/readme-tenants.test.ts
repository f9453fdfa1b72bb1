// Runs the README's "Try it: two tenants side by side" as written: `npm start` (the sample's main, in a child
// process, with the README's ACTIONS_ADMIN_TOKEN and ACTIONS_INSTANCE_TOKENS) and every curl command of the
// section, with the real curl (which sends *.localhost to the loopback address itself). Only the port
// (8080), the target's address (localhost:8090) and the IDs the creations answer are substituted.
import { type ChildProcess, exec, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTargetServer, type TargetServer } from "./helpers/target-server.js";

const execAsync = promisify(exec);
const root = fileURLToPath(new URL("..", import.meta.url));

/** The README's section, from its heading to the next one. */
function section(): string {
  const readme = readFileSync(`${root}/README.md`, "utf8");
  const start = readme.indexOf("## Try it: two tenants side by side");
  expect(start).toBeGreaterThan(0);
  const end = readme.indexOf("\n## ", start + 3);
  return readme.slice(start, end);
}

/** The shell blocks of the section. */
function shellBlocks(text: string): string[] {
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

/** The commands of a block: each starts with "curl" and runs until a comment, a blank line or the next command. */
function commands(block: string): string[] {
  const out: string[] = [];
  let current: string[] | undefined;
  for (const line of block.split("\n")) {
    if (line.startsWith("curl ")) {
      if (current) out.push(current.join("\n"));
      current = [line];
    } else if (line.trim() === "" || line.startsWith("#")) {
      if (current) out.push(current.join("\n"));
      current = undefined;
    } else {
      if (current === undefined) throw new Error(`a line outside a command: ${line}`);
      current.push(line);
    }
  }
  if (current) out.push(current.join("\n"));
  return out;
}

describe("README: two tenants side by side", () => {
  const text = section();
  const [start, curls] = shellBlocks(text);
  let child: ChildProcess;
  let port = 0;
  let targets: TargetServer;
  const ids = new Map<string, string>();

  beforeAll(async () => {
    targets = await startTargetServer();
    // The start command: VAR=value ... npm start.
    const env = Object.fromEntries([...start!.matchAll(/(ACTIONS_\w+)=('([^']*)'|(\S+))/g)].map((m) => [m[1]!, m[3] ?? m[4]!]));
    expect(start!.trim()).toMatch(/ npm start$/);
    expect(Object.keys(env).sort()).toEqual(["ACTIONS_ADMIN_TOKEN", "ACTIONS_INSTANCE_TOKENS"]);
    child = spawn(process.execPath, ["--import", "tsx", "src/sample/main.ts"], {
      cwd: root,
      env: { ...process.env, ...env, PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", DATABASE_URL: "" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    port = await new Promise<number>((resolve, reject) => {
      let seen = "";
      const timer = setTimeout(() => reject(new Error(`the sample server did not start: ${seen}`)), 30_000);
      child.stderr!.on("data", (d: Buffer) => {
        seen += d.toString();
        const url = /"msg":"sample server listening","url":"(http:[^"]+)"/.exec(seen)?.[1];
        if (url !== undefined) {
          clearTimeout(timer);
          resolve(Number(new URL(url).port));
        }
      });
      child.once("exit", (code) => reject(new Error(`the sample server exited with ${code}: ${seen}`)));
    });
  }, 60_000);
  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) child.kill();
    await targets?.close();
  });

  /** Runs a command of the README with curl; resolves the status and the JSON answer. */
  const run = async (command: string): Promise<{ status: number; json: any }> => {
    let substituted = command
      .replaceAll(":8080/", `:${port}/`)
      .replaceAll("http://localhost:8090", targets.url);
    for (const [placeholder, id] of ids) substituted = substituted.replaceAll(placeholder, id);
    expect(substituted).not.toMatch(/:8080|:8090|<target id of/);
    // -sS: no progress meter; --max-time: never hang the suite; -w: the status on a line of its own.
    const curl = substituted.replace(/^curl /, "curl -sS --max-time 20 -w '\\n%{http_code}' ");
    const { stdout } = await execAsync(curl, { timeout: 30_000 });
    const newline = stdout.lastIndexOf("\n");
    return { status: Number(stdout.slice(newline + 1)), json: JSON.parse(stdout.slice(0, newline)) };
  };

  it("has the commands it explains: two targets, two executions, two calls and a refused one", () => {
    expect(commands(curls!).length).toBe(7);
  });

  it("runs every command as the README says", async () => {
    const list = commands(curls!);
    for (const [i, command] of list.entries()) {
      const { status, json } = await run(command);
      const host = /http:\/\/([a-z.]+):8080/.exec(command)![1]!;
      if (i < list.length - 1) {
        expect([i, status]).toEqual([i, 200]);
      }
      if (command.includes("/v2beta/actions/targets'")) {
        expect(json).toEqual({ id: expect.stringMatching(/^\d+$/), creationDate: expect.any(String), signingKey: expect.any(String) });
        ids.set(`<target id of ${host.split(".")[0]}>`, json.id);
      }
      if (i === list.length - 1) {
        // The README's answer of the last command.
        const shown = /# -> 403 (\{"code":7,"message":"(.*)",\.\.\.\})/.exec(text);
        expect(shown).not.toBeNull();
        expect(status).toBe(403);
        expect(json).toMatchObject({ code: 7, message: shown![2]!.replaceAll('\\"', '"') });
      }
    }
    expect([...ids.keys()].sort()).toEqual(["<target id of a>", "<target id of b>"]);
    // Each tenant's target got its own tenant's call, with the instance ID, and nothing else.
    expect(targets.callsTo("/tenant-a").map((c) => [c.json.fullMethod, c.json.instanceID, c.json.request.profile.givenName])).toEqual([
      ["/zitadel.user.v2.UserService/AddHumanUser", "a.localhost", "Ada"],
    ]);
    expect(targets.callsTo("/tenant-b").map((c) => [c.json.fullMethod, c.json.instanceID, c.json.request.profile.givenName])).toEqual([
      ["/zitadel.user.v2.UserService/AddHumanUser", "b.localhost", "Bob"],
    ]);
    expect(text).toContain('`/tenant-a` receives `{"fullMethod":"/zitadel.user.v2.UserService/AddHumanUser","instanceID":"a.localhost",...}`');
  }, 120_000);

  it("keeps the default instance apart, and labels /metrics with the instances", async () => {
    const list = await run(
      `curl -X POST 'http://localhost:8080/v2beta/actions/targets/search' -H 'Content-Type: application/json' -H 'Authorization: Bearer secret' --data-raw '{}'`,
    );
    expect(list).toEqual({ status: 200, json: { pagination: { appliedLimit: "100" } } });
    const viaHostHeader = await run(
      `curl -X POST 'http://localhost:8080/v2beta/actions/targets/search' -H 'Host: b.localhost' -H 'Content-Type: application/json' -H 'Authorization: Bearer token-b' --data-raw '{}'`,
    );
    expect(viaHostHeader.json.targets.map((t: { name: string; endpoint: string }) => [t.name, new URL(t.endpoint).pathname])).toEqual([
      ["audit", "/tenant-b"],
    ]);
    const { stdout } = await execAsync(`curl -sS --max-time 20 http://localhost:${port}/metrics`, { timeout: 30_000 });
    expect(stdout).toMatch(/connect_actions_target_calls_total\{instance="a\.localhost",target="audit",execution="response\/zitadel\.user\.v2\.UserService\/AddHumanUser",outcome="ok",async="false"\} 1/);
    expect(stdout).toMatch(/connect_actions_target_calls_total\{instance="b\.localhost",target="audit",[^}]*\} 1/);
  }, 60_000);
});
