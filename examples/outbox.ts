import { createActions } from "connect-actions";
import { createPostgresEventQueue, createPostgresOutbox, createPostgresStore } from "connect-actions/postgres";
import pg from "pg";

// Your service's own table and the queue's (schema connect_actions) in one database.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
pool.on("error", (error) => console.warn("postgres: idle connection failed", error)); // see Failure behaviour
await pool.query("CREATE TABLE IF NOT EXISTS things (id text PRIMARY KEY, name text NOT NULL)");
const eventQueue = await createPostgresEventQueue({ pool });
const actions = createActions({ store: await createPostgresStore({ pool }), eventQueue, eventTypes: ["thing.added"] });
const outbox = createPostgresOutbox({ queue: eventQueue, publisher: actions.publisher });

// The row and the deliveries of its event commit together, or neither does: what an acknowledged
// write publishes is never lost, and a failed write publishes nothing.
export async function addThing(id: string, name: string): Promise<{ id: string; name: string }> {
  return outbox.transaction(async (client) => {
    await client.query("INSERT INTO things (id, name) VALUES ($1, $2)", [id, name]);
    return {
      result: { id, name },
      events: {
        aggregateID: id, aggregateType: "thing", resourceOwner: "", instanceID: "", version: "v1",
        sequence: 1, eventType: "thing.added", createdAt: new Date(), userID: "", payload: { name },
      },
    };
  }); // rejects, keeping nothing, with what your code threw, or Unavailable, Aborted or Internal for the database
}
