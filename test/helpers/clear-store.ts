import type { InstanceStore } from "../../src/store/action-store.js";

/** clearStore deletes every target and execution of a store's instance, for tests that share one server. */
export async function clearStore(store: InstanceStore): Promise<void> {
  for (const t of await store.listTargets()) await store.deleteTarget(t.id);
  for (const e of await store.listExecutions()) await store.setExecution(e.condition, []);
}
