// What the sample's `npm start` tells a person: the start-up failures, one line each with what to do, and
// the banner with a command that can be pasted as it is.
import { parseInstanceTokens } from "./instance-tokens.js";

/**
 * SampleEnvironment is what `npm start` reads from the environment, checked.
 */
export interface SampleEnvironment {
  readonly port: number;
  readonly host: string;
  /** The token from ACTIONS_ADMIN_TOKEN, undefined when unset. */
  readonly adminToken: string | undefined;
  /** ACTIONS_INSTANCE_TOKENS: host name -> token (see parseInstanceTokens), default none. */
  readonly instanceTokens: Readonly<Record<string, string>>;
  /** DATABASE_URL, undefined when unset or empty (everything in memory). */
  readonly databaseUrl: string | undefined;
  /** SHUTDOWN_GRACE_MS, default 25 000. */
  readonly shutdownGraceMs: number;
}

/**
 * StartupError is a start-up failure whose message is one line that says
 * what is wrong and what to do; `exitCode` is 2 for a bad setting, 1 otherwise.
 */
export class StartupError extends Error {
  override name = "StartupError";
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
  }
}

/**
 * readEnvironment checks PORT, HOST, ACTIONS_ADMIN_TOKEN, DATABASE_URL and
 * SHUTDOWN_GRACE_MS, and throws a StartupError (exit code 2) naming the
 * first one that is unusable.
 */
export function readEnvironment(env: NodeJS.ProcessEnv): SampleEnvironment {
  const portText = env.PORT ?? "8080";
  if (!/^\d{1,5}$/.test(portText.trim()) || Number(portText) > 65535) {
    throw new StartupError(`PORT must be a whole number from 0 to 65535, got "${portText}"; for example: PORT=8080 npm start`, 2);
  }
  const token = env.ACTIONS_ADMIN_TOKEN;
  if (token !== undefined && token.trim() === "") {
    throw new StartupError("ACTIONS_ADMIN_TOKEN is set but empty; set a token (ACTIONS_ADMIN_TOKEN=secret npm start) or unset it to get a generated one", 2);
  }
  let instanceTokens: Record<string, string>;
  try {
    instanceTokens = parseInstanceTokens(env.ACTIONS_INSTANCE_TOKENS ?? "");
  } catch (error) {
    throw new StartupError(
      `ACTIONS_INSTANCE_TOKENS: ${error instanceof Error ? error.message : String(error)}; use host=token pairs, for example a.localhost=token-a,b.localhost=token-b`,
      2,
    );
  }
  if (token !== undefined && Object.values(instanceTokens).includes(token.trim())) {
    throw new StartupError("ACTIONS_INSTANCE_TOKENS: an instance token must differ from ACTIONS_ADMIN_TOKEN", 2);
  }
  const databaseUrl = env.DATABASE_URL || undefined;
  if (databaseUrl !== undefined) checkDatabaseUrl(databaseUrl);
  const graceText = env.SHUTDOWN_GRACE_MS ?? "25000";
  if (!/^\d{1,9}$/.test(graceText.trim())) {
    throw new StartupError(`SHUTDOWN_GRACE_MS must be a whole number of milliseconds, got "${graceText}"; for example: SHUTDOWN_GRACE_MS=25000`, 2);
  }
  return {
    port: Number(portText),
    host: env.HOST || "127.0.0.1",
    adminToken: token?.trim(),
    instanceTokens,
    databaseUrl,
    shutdownGraceMs: Number(graceText),
  };
}

const databaseUrlHint = "use postgres://USER@HOST:5432/DATABASE, or unset DATABASE_URL to keep everything in memory";

/** checkDatabaseUrl throws a StartupError unless `url` is a postgres:// or postgresql:// URL with a host. */
function checkDatabaseUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StartupError(`DATABASE_URL is not a URL ("${url}"); ${databaseUrlHint}`, 2);
  }
  if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
    throw new StartupError(`DATABASE_URL must start with postgres:// or postgresql://, got "${parsed.protocol}//..."; ${databaseUrlHint}`, 2);
  }
  if (parsed.hostname === "" && !parsed.searchParams.has("host")) {
    throw new StartupError(`DATABASE_URL names no host ("${redact(parsed)}"); ${databaseUrlHint}`, 2);
  }
}

/** redact returns a URL without its password. */
function redact(url: URL): string {
  const copy = new URL(url);
  if (copy.password !== "") copy.password = "***";
  return copy.toString();
}

/** codesOf returns the `code` of an error and of its causes, outermost first. */
function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
    e = (e as { cause?: unknown }).cause;
  }
  return codes;
}

/** messagesOf returns the messages of an error and of its causes, outermost first. */
function messagesOf(error: unknown): string[] {
  const messages: string[] = [];
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e instanceof Error) messages.push(e.message);
    e = (e as { cause?: unknown }).cause;
  }
  return messages;
}

/**
 * describeStartupFailure returns the one line `npm start` prints when the
 * sample cannot start: what went wrong and what to do, for a port in use or
 * not allowed, a HOST that is not an address of the machine, and a
 * PostgreSQL that refuses, is unknown, does not answer, has no such database
 * or refuses the user; else the error's message on one line.
 */
export function describeStartupFailure(error: unknown, env: SampleEnvironment): string {
  if (error instanceof StartupError) return error.message;
  const codes = codesOf(error);
  const where = `${env.host}:${env.port}`;
  const next = env.port === 65535 ? 8080 : env.port + 1;
  if (codes.includes("EADDRINUSE")) {
    return `${where} is already in use by another process; stop it, or choose another port: PORT=${next} npm start`;
  }
  if (codes.includes("EACCES") && !codes.some((c) => /^[0-9A-Z]{5}$/.test(c))) {
    return `no permission to listen on ${where}; choose a port above 1023: PORT=8080 npm start`;
  }
  if (codes.includes("EADDRNOTAVAIL")) {
    return `HOST "${env.host}" is not an address of this machine; use HOST=127.0.0.1 (this machine only) or HOST=0.0.0.0 (every interface)`;
  }
  if (env.databaseUrl !== undefined) {
    const url = new URL(env.databaseUrl);
    const server = `${url.hostname || "localhost"}:${url.port || "5432"}`;
    const database = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username) || "postgres";
    const user = decodeURIComponent(url.username) || "the current user";
    const fallback = "or unset DATABASE_URL to keep everything in memory";
    if (codes.includes("3D000")) {
      return `PostgreSQL at ${server} has no database "${database}"; create it (createdb -h ${url.hostname || "localhost"} -p ${url.port || "5432"}${url.username === "" ? "" : ` -U ${user}`} ${database}), or name another one in DATABASE_URL`;
    }
    if (codes.includes("28P01") || codes.includes("28000")) {
      return `PostgreSQL at ${server} refused user ${user} (${messagesOf(error).at(-1) ?? "authentication failed"}); fix the user or password in DATABASE_URL`;
    }
    if (codes.includes("ECONNREFUSED")) {
      return `PostgreSQL at ${server} (DATABASE_URL) refused the connection: is it running? Start it, or fix DATABASE_URL, ${fallback}`;
    }
    if (codes.includes("ENOTFOUND") || codes.includes("EAI_AGAIN")) {
      return `the host "${url.hostname}" of DATABASE_URL is not known; fix DATABASE_URL, ${fallback}`;
    }
    if (codes.includes("ETIMEDOUT") || codes.includes("EHOSTUNREACH") || messagesOf(error).some((m) => /timeout/i.test(m))) {
      return `PostgreSQL at ${server} (DATABASE_URL) did not answer in time; check that it runs and can be reached from here, ${fallback}`;
    }
  }
  const message = messagesOf(error)[0] ?? String(error);
  return message.replace(/\s+/g, " ").trim();
}

/**
 * BannerOptions configures bannerText.
 */
export interface BannerOptions {
  readonly url: string;
  readonly token: string;
  /** Where the token came from. */
  readonly tokenSource: "generated" | "ACTIONS_ADMIN_TOKEN";
  /**
   * Whether a person reads the output (stderr is a terminal). A token from
   * the environment is shown then, so that the command can be pasted (the
   * shell of `ACTIONS_ADMIN_TOKEN=x npm start` does not have the variable);
   * in logs it is not.
   */
  readonly interactive: boolean;
  /** The hosts that are instances of their own (ACTIONS_INSTANCE_TOKENS), default none. */
  readonly instanceHosts?: readonly string[];
  /** The instance of the other hosts, named with instanceHosts. */
  readonly otherHosts?: string;
}

/**
 * bannerText returns what `npm start` prints once it listens: where the
 * management API is and a curl command for it.
 */
export function bannerText(options: BannerOptions): string {
  const { url, token, tokenSource, interactive } = options;
  const shown = tokenSource === "generated" || interactive ? token : "<the value of ACTIONS_ADMIN_TOKEN>";
  // Single quotes keep any token as it is in a POSIX shell; a quote in it is written '\''.
  const header = `'Authorization: Bearer ${shown.replaceAll("'", "'\\''")}'`;
  return (
    `\nManagement API (ActionService v2beta and v2) at ${url}, for example:\n` +
    `  curl -H ${header} ${url}/v2beta/actions/executions/methods\n` +
    `Web console: ${url}/console/   Health: ${url}/livez ${url}/readyz\n` +
    (options.instanceHosts === undefined || options.instanceHosts.length === 0
      ? ""
      : `Instances by host: ${options.instanceHosts.join(", ")} (each with its ACTIONS_INSTANCE_TOKENS token); other hosts: ${options.otherHosts}.\n`) +
    (tokenSource === "generated" ? "Set ACTIONS_ADMIN_TOKEN to choose the token yourself.\n\n" : "\n")
  );
}
