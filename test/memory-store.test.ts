import { createMemoryStore } from "../src/store/memory-store.js";
import { describeStoreContract } from "../src/testing/store-contract.js";

describeStoreContract("memory", async (limits) => {
  const store = createMemoryStore(limits);
  return { store, cleanup: () => store.close() };
});
