import { createActions } from "connect-actions";
import { createPostgresStore } from "connect-actions/postgres";

// Many instances: keep plans of at most about 512 MiB (estimated) and 20 000 instances; the least
// recently used are evicted and compiled again on their next use.
const actions = createActions({
  store: await createPostgresStore({ connectionString: process.env.DATABASE_URL }),
  adminTokens: process.env.ADMIN_TOKEN ?? "change-me",
  plans: { maxPlanBytes: 512 * 1024 * 1024, maxPlans: 20_000 },
});

// What the planner holds and has done: { plans, estimatedBytes, compiles, updates, evictions }.
setInterval(() => console.log(actions.planner.stats()), 60_000).unref();
