import { execFile } from "node:child_process";
import { chown, mkdtemp, rm } from "node:fs/promises";
import { readdirSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * PgCluster is a throwaway PostgreSQL cluster of its own (initdb + pg_ctl, as
 * .ci/run starts one), on a free loopback port in a temporary directory, that
 * a test can stop and start again.
 */
export interface PgCluster {
  /** The connection string of its "postgres" database, as the superuser postgres (trust). */
  readonly url: string;
  readonly port: number;
  /** stop shuts the server down (pg_ctl stop, mode fast: connections are ended). */
  stop(): Promise<void>;
  /** start starts it again on the same port and waits until it accepts connections. */
  start(): Promise<void>;
  /** destroy stops it at once and removes its directory. */
  destroy(): Promise<void>;
}

/** pgBinDir returns the bin directory of the newest PostgreSQL installed under /usr/lib/postgresql, or undefined. */
export function pgBinDir(): string | undefined {
  try {
    const versions = readdirSync("/usr/lib/postgresql").sort((a, b) => Number(b) - Number(a));
    return versions.length === 0 ? undefined : `/usr/lib/postgresql/${versions[0]}/bin`;
  } catch {
    return undefined;
  }
}

function run(file: string, args: string[], asPostgres: boolean): Promise<string> {
  const [command, argv] = asPostgres ? ["runuser", ["-u", "postgres", "--", file, ...args]] : [file, args];
  return new Promise((resolve, reject) => {
    execFile(command, argv, { timeout: 120_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${file} ${args.join(" ")}: ${error.message}\n${stderr}`)) : resolve(stdout),
    );
  });
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/**
 * startPgCluster creates and starts a cluster (fsync off: a test cluster).
 * Run as root, it creates and runs the cluster as the user postgres, as
 * PostgreSQL refuses to run as root. Throws when no PostgreSQL is installed.
 */
export async function startPgCluster(): Promise<PgCluster> {
  const bin = pgBinDir();
  if (bin === undefined) throw new Error("no PostgreSQL under /usr/lib/postgresql: install postgresql to run this test");
  const asPostgres = process.getuid?.() === 0;
  const dir = await mkdtemp(join(tmpdir(), "ca-pg-cluster-"));
  if (asPostgres) {
    const uid = Number((await run("id", ["-u", "postgres"], false)).trim());
    const gid = Number((await run("id", ["-g", "postgres"], false)).trim());
    await chown(dir, uid, gid);
  }
  const data = join(dir, "data");
  await run(`${bin}/initdb`, ["-D", data, "-U", "postgres", "-A", "trust", "--no-sync"], asPostgres);
  const port = await freePort();
  const pgCtl = (...args: string[]) => run(`${bin}/pg_ctl`, ["-D", data, ...args], asPostgres);
  const start = async () => {
    await pgCtl("-l", join(dir, "log"), "-w", "-t", "60", "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, "start");
  };
  await start();
  let destroyed = false;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      await pgCtl("-m", "fast", "-w", "stop");
    },
    start,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await pgCtl("-m", "immediate", "-w", "stop").catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
