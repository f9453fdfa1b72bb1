import { createMemoryStore } from "../src/store/memory-store.js";
import { describeStoreContract } from "../src/testing/store-contract.js";

describeStoreContract("memory", async ({ now }) => {
  const store = createMemoryStore({ now });
  return { store, cleanup: () => store.close() };
});
