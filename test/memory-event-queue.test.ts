import { createMemoryEventQueue } from "../src/events/memory-event-queue.js";
import { describeEventQueueContract } from "../src/testing/event-queue-contract.js";

describeEventQueueContract("memory", async () => {
  const queue = createMemoryEventQueue();
  return { queue, cleanup: () => queue.close() };
});
