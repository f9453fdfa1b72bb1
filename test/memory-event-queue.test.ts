import { createMemoryEventQueue } from "../src/memory-event-queue.js";
import { describeEventQueueContract } from "./event-queue-contract.js";

describeEventQueueContract("memory", async () => {
  const queue = createMemoryEventQueue();
  return { queue, cleanup: () => queue.close() };
});
