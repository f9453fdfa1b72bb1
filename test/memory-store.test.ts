import { createMemoryStore } from "../src/store/memory-store.js";
import { describeStoreContract } from "../src/testing/store-contract.js";

describeStoreContract("memory", async ({ now, limits }) => {
  const store = createMemoryStore({ now, ...limits });
  return { store, cleanup: () => store.close() };
});
