// Events bench worker: one delivery worker in its own process, until SIGTERM.
//   argv[2] "queue"     createEventWorker on createPostgresEventQueue (schema connect_actions) with the
//                       real target dispatcher, concurrency 16, targets from createPostgresStore;
//           "graphile"  graphile-worker's run() with concurrency 16 and one task, "deliver", that POSTs
//                       its payload to argv[4] with an undici keep-alive pool.
//   argv[3] the database URL, argv[4] the hook URL (graphile only).
// Prints "ready" once it works.
import { Logger, run } from "graphile-worker";
import { Agent } from "undici";
import { createTargetDispatcher } from "../src/dispatch/target-dispatcher.js";
import { createEventWorker } from "../src/events/event-worker.js";
import { createJsonLogger, silentLogger } from "../src/logger.js";
import { createExecutionPlanner } from "../src/plan/execution-planner.js";
import { createPostgresEventQueue } from "../src/postgres/event-queue.js";
import { createPostgresStore } from "../src/postgres/store.js";

const [mode, databaseUrl = "", hookUrl = ""] = process.argv.slice(2);
const concurrency = 16;
let stop: () => Promise<void>;

if (mode === "queue") {
  const store = await createPostgresStore({ connectionString: databaseUrl, logger: silentLogger });
  const queue = await createPostgresEventQueue({ connectionString: databaseUrl, logger: silentLogger });
  const planner = createExecutionPlanner(store);
  const dispatcher = createTargetDispatcher({ logger: silentLogger });
  // Warnings and errors go to stderr: a bench that stalls says why.
  const worker = createEventWorker({ queue, planner, dispatcher, concurrency, logger: createJsonLogger({ level: "warn" }) });
  worker.start();
  stop = async () => {
    await worker.stop();
    planner.close();
    await dispatcher.close();
    await queue.close();
    await store.close();
  };
} else if (mode === "graphile") {
  const agent = new Agent({ connections: 64 });
  const url = new URL(hookUrl);
  const runner = await run({
    connectionString: databaseUrl,
    concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: new Logger(() => () => {}),
    taskList: {
      deliver: async (payload) => {
        const res = await agent.request({
          origin: url.origin,
          path: url.pathname,
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(payload),
        });
        await res.body.dump();
        if (res.statusCode < 200 || res.statusCode > 299) throw new Error(`status ${res.statusCode}`);
      },
    },
  });
  stop = async () => {
    await runner.stop();
    await agent.close();
  };
} else {
  throw new Error(`unknown mode "${mode}"`);
}
process.stdout.write("ready\n");
process.on("SIGTERM", () => {
  void stop().then(() => process.exit(0));
});
