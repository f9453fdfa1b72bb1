// The consumer test's checks (run by .ci/consumer in a fresh project that installed the packed tarball):
// starts examples/memory.ts or examples/postgres.ts and examples/target.ts as plain node processes, then, as an
// administrator would, creates a call target (Connect, binary) with the package's own ActionService descriptor, sets an
// execution, and checks that the target changed the request. With --postgres it also checks event delivery.
import { type ChildProcess, spawn } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createConsoleHandler } from "connect-actions/console";
import { ActionServiceV2 } from "connect-actions/management";
import { GreetService } from "../../gen/example/greet/v1/greet_pb.js";

const postgres = process.argv.includes("--postgres");
const here = new URL(".", import.meta.url);
const adminToken = "consumer-admin-token";
const children: ChildProcess[] = [];

function fail(message: string): never {
  process.stderr.write(`consumer check failed: ${message}\n`);
  for (const child of children) child.kill("SIGKILL");
  process.exit(1);
}

async function freePort(): Promise<number> {
  const server = http.createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function start(script: string, env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [new URL(script, here).pathname], { env: { ...process.env, ...env }, stdio: "inherit" });
  children.push(child);
  child.on("exit", (code, signal) => {
    if (code !== 0 && signal !== "SIGTERM") fail(`${script} exited with ${code ?? signal}`);
  });
  return child;
}

async function eventually<T>(what: string, attempt: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) fail(`${what}: ${String(error)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const servicePort = await freePort();
const service = start(postgres ? "postgres.js" : "memory.js", { PORT: String(servicePort), ADMIN_TOKEN: adminToken });
const baseUrl = `http://127.0.0.1:${servicePort}`;
const headers = { authorization: `Bearer ${adminToken}` };
// The examples serve HTTP/1.1 (http.createServer): Connect's binary format, as gRPC would need HTTP/2.
const transport = createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat: true });
const admin = createClient(ActionServiceV2, transport);
const greeter = createClient(GreetService, transport);

const targetPort = await freePort();
const created = await eventually("CreateTarget", () =>
  admin.createTarget(
    {
      name: "uppercase",
      targetType: { case: "restCall", value: { interruptOnError: true } },
      endpoint: `http://127.0.0.1:${targetPort}/`,
      timeout: { seconds: 5n },
    },
    { headers },
  ),
);
start("target.js", { PORT: String(targetPort), TARGET_SIGNING_KEY: created.signingKey });
// Listening once it refuses an unsigned call.
await eventually("the target to listen", async () => {
  const { status } = await fetch(`http://127.0.0.1:${targetPort}/`, { method: "POST", body: "{}" });
  if (status !== 401) throw new Error(`the target answered an unsigned call with ${status}`);
});
await admin.setExecution(
  {
    condition: { conditionType: { case: "request", value: { condition: { case: "method", value: "/example.greet.v1.GreetService/Greet" } } } },
    targets: [created.id],
  },
  { headers },
);
const { greeting } = await eventually("Greet through the call target", () => greeter.greet({ name: "alice" }));
if (greeting !== "Hello, ALICE!") fail(`expected the call target to change the request, got "${greeting}"`);
process.stdout.write(`call target changed the request: "${greeting}"\n`);

if (postgres) {
  // An event execution: the greeting's event reaches a webhook, through the PostgreSQL queue.
  const events: unknown[] = [];
  const hook = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      events.push(JSON.parse(Buffer.concat(chunks).toString("utf8")));
      res.end();
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  const hookPort = (hook.address() as AddressInfo).port;
  const webhook = await admin.createTarget(
    { name: "events", targetType: { case: "restWebhook", value: {} }, endpoint: `http://127.0.0.1:${hookPort}/`, timeout: { seconds: 5n } },
    { headers },
  );
  await admin.setExecution(
    { condition: { conditionType: { case: "event", value: { condition: { case: "event", value: "greet.sent" } } } }, targets: [webhook.id] },
    { headers },
  );
  await greeter.greet({ name: "bob" });
  await eventually("the greet.sent event", async () => {
    if (events.length === 0) throw new Error("not yet delivered");
  });
  const event = events[0] as { event_type?: string; event_payload?: { greeting?: string } };
  if (event.event_type !== "greet.sent" || event.event_payload?.greeting !== "Hello, BOB!") {
    fail(`unexpected event ${JSON.stringify(event)}`);
  }
  process.stdout.write(`event delivered through PostgreSQL: ${JSON.stringify(event.event_payload)}\n`);
  hook.close();
}

// The web console's assets ship with the package: its handler serves the page.
const console = http.createServer(createConsoleHandler()).listen(0, "127.0.0.1");
await new Promise((resolve) => console.once("listening", resolve));
const page = await fetch(`http://127.0.0.1:${(console.address() as AddressInfo).port}/console/`);
if (page.status !== 200 || !(await page.text()).includes("<html")) fail(`the console page answered ${page.status}`);
console.close();
process.stdout.write("console page served from the package\n");

// Graceful stop: SIGTERM ends the service process on its own.
const exited = new Promise((resolve) => service.once("exit", resolve));
for (const child of children) child.kill("SIGTERM");
await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error("no exit")), 10_000))]).catch(() =>
  fail("the service did not exit after SIGTERM"),
);
process.stdout.write("consumer check passed\n");
