// Issue 14: start-up failures of `npm start` are one line each with what to do, and the banner's command can be
// pasted as it is. The real failures (port in use, PostgreSQL down, missing database, bad URL) are run against
// `node src/sample/main.ts` in child processes.
import { spawn } from "node:child_process";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bannerText, describeStartupFailure, readEnvironment, StartupError } from "../src/sample/startup.js";
import { adminUrl } from "./helpers/postgres.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const main = fileURLToPath(new URL("../src/sample/main.ts", import.meta.url));

/** start runs the sample's main with `env` and resolves its exit code and stderr once it exits. */
function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", main], {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", LOG_LEVEL: "warn", ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`the sample did not exit: ${stderr}`));
    }, 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

const pg = new URL(adminUrl);

describe("npm start's start-up failures", () => {
  it("are one line each, naming what is wrong and what to do", async () => {
    const busy = net.createServer();
    await new Promise<void>((r) => busy.listen(0, "127.0.0.1", r));
    const busyPort = (busy.address() as net.AddressInfo).port;
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const closedPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const missing = new URL(adminUrl);
    missing.pathname = "/ca_no_such_database";
    const refused = new URL(adminUrl);
    refused.host = `127.0.0.1:${closedPort}`;
    try {
      const cases: [Record<string, string>, number, RegExp][] = [
        [{ PORT: String(busyPort) }, 1, new RegExp(`^127\\.0\\.0\\.1:${busyPort} is already in use by another process; stop it, or choose another port: PORT=${busyPort + 1} npm start$`)],
        [{ DATABASE_URL: "not a url" }, 2, /^DATABASE_URL is not a URL \("not a url"\); use postgres:\/\/USER@HOST:5432\/DATABASE, or unset DATABASE_URL/],
        [{ DATABASE_URL: refused.toString() }, 1, new RegExp(`^PostgreSQL at 127\\.0\\.0\\.1:${closedPort} \\(DATABASE_URL\\) refused the connection: is it running\\?`)],
        [{ DATABASE_URL: missing.toString() }, 1, new RegExp(`^PostgreSQL at ${pg.hostname}:${pg.port || 5432} has no database "ca_no_such_database"; create it \\(createdb -h ${pg.hostname} -p ${pg.port || 5432}.* ca_no_such_database\\)`)],
      ];
      const outcomes = await Promise.all(cases.map(([env]) => start({ PORT: "0", ...env })));
      outcomes.forEach(({ code, stderr }, i) => {
        const [env, exitCode, message] = cases[i]!;
        const lines = stderr.trimEnd().split("\n");
        expect(lines, JSON.stringify(env)).toHaveLength(1);
        expect(lines[0]!.startsWith("Cannot start the sample server: "), stderr).toBe(true);
        expect(lines[0]!.slice("Cannot start the sample server: ".length)).toMatch(message);
        expect(code).toBe(exitCode);
      });
    } finally {
      await new Promise<void>((r) => busy.close(() => r()));
    }
  }, 120_000);
});

describe("readEnvironment", () => {
  it("names the first unusable setting, with an example (exit code 2)", () => {
    const failure = (env: NodeJS.ProcessEnv) => {
      try {
        readEnvironment(env);
      } catch (e) {
        expect(e).toBeInstanceOf(StartupError);
        expect((e as StartupError).exitCode).toBe(2);
        return (e as StartupError).message;
      }
      throw new Error("expected a failure");
    };
    expect(failure({ PORT: "eighty" })).toBe('PORT must be a whole number from 0 to 65535, got "eighty"; for example: PORT=8080 npm start');
    expect(failure({ PORT: "70000" })).toMatch(/^PORT must be a whole number/);
    expect(failure({ ACTIONS_ADMIN_TOKEN: " " })).toMatch(/^ACTIONS_ADMIN_TOKEN is set but empty/);
    expect(failure({ DATABASE_URL: "mysql://db/x" })).toMatch(/^DATABASE_URL must start with postgres:\/\/ or postgresql:\/\//);
    expect(failure({ DATABASE_URL: "postgres:///x" })).toMatch(/^DATABASE_URL names no host/);
    expect(failure({ SHUTDOWN_GRACE_MS: "soon" })).toMatch(/^SHUTDOWN_GRACE_MS must be a whole number of milliseconds/);
    expect(readEnvironment({})).toEqual({
      port: 8080,
      host: "127.0.0.1",
      adminToken: undefined,
      instanceTokens: {},
      databaseUrl: undefined,
      shutdownGraceMs: 25_000,
    });
    expect(failure({ ACTIONS_INSTANCE_TOKENS: "a.localhost" })).toMatch(/^ACTIONS_INSTANCE_TOKENS: entry 1 \("a\.localhost"\) is not host=token; use host=token pairs/);
    expect(failure({ ACTIONS_ADMIN_TOKEN: "same", ACTIONS_INSTANCE_TOKENS: "a.localhost=same" })).toBe(
      "ACTIONS_INSTANCE_TOKENS: an instance token must differ from ACTIONS_ADMIN_TOKEN",
    );
    expect(readEnvironment({ ACTIONS_INSTANCE_TOKENS: "A.localhost=t" }).instanceTokens).toEqual({ "a.localhost": "t" });
    expect(readEnvironment({ DATABASE_URL: "", ACTIONS_ADMIN_TOKEN: " t " }).adminToken).toBe("t");
  });
});

describe("describeStartupFailure", () => {
  const env = readEnvironment({ PORT: "8080", DATABASE_URL: "postgres://app@db.example:6543/app" });
  const withCode = (code: string, cause?: unknown) => Object.assign(new Error(`failure ${code}`), { code, cause });

  it("explains causes found anywhere in the error's cause chain", () => {
    expect(describeStartupFailure(new Error("wrapped", { cause: withCode("ECONNREFUSED") }), env)).toMatch(/^PostgreSQL at db\.example:6543/);
    expect(describeStartupFailure(withCode("ENOTFOUND"), env)).toMatch(/^the host "db\.example" of DATABASE_URL is not known/);
    expect(describeStartupFailure(withCode("28P01"), env)).toMatch(/^PostgreSQL at db\.example:6543 refused user app/);
    expect(describeStartupFailure(withCode("EACCES"), env)).toMatch(/^no permission to listen on 127\.0\.0\.1:8080/);
    expect(describeStartupFailure(new Error("timeout exceeded when trying to connect"), env)).toMatch(/did not answer in time/);
    expect(describeStartupFailure(new Error("something\n  else"), env)).toBe("something else");
    expect(describeStartupFailure(new StartupError("as it is"), env)).toBe("as it is");
  });
});

describe("bannerText", () => {
  it("shows a command that can be pasted: the generated token, or the one from the environment when a person reads it", () => {
    const url = "http://127.0.0.1:8080";
    expect(bannerText({ url, token: "abc_-1", tokenSource: "generated", interactive: false })).toContain(
      "curl -H 'Authorization: Bearer abc_-1' http://127.0.0.1:8080/v2beta/actions/executions/methods",
    );
    const typed = bannerText({ url, token: "it's $secret", tokenSource: "ACTIONS_ADMIN_TOKEN", interactive: true });
    expect(typed).toContain(`curl -H 'Authorization: Bearer it'\\''s $secret' ${url}`);
    expect(typed).not.toContain("$ACTIONS_ADMIN_TOKEN");
    // In logs (no terminal), a token from the environment is not written out.
    const logged = bannerText({ url, token: "s3cret", tokenSource: "ACTIONS_ADMIN_TOKEN", interactive: false });
    expect(logged).not.toContain("s3cret");
    expect(logged).toContain("<the value of ACTIONS_ADMIN_TOKEN>");
  });

  it("pastes into a POSIX shell as the exact header", async () => {
    const token = `it's "$HOME" \`x\` \\ ok`;
    const text = bannerText({ url: "http://h", token, tokenSource: "ACTIONS_ADMIN_TOKEN", interactive: true });
    const command = /curl (-H .*) http:\/\/h\//.exec(text)?.[1];
    const echoed = await new Promise<string>((resolve) => {
      const sh = spawn("sh", ["-c", `printf '%s' ${command!.slice(3)}`]);
      let out = "";
      sh.stdout.setEncoding("utf8").on("data", (c: string) => (out += c));
      sh.once("exit", () => resolve(out));
    });
    expect(echoed).toBe(`Authorization: Bearer ${token}`);
  });
});
