import http from "node:http";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createActions, hopsOf } from "connect-actions";
import { createPostgresDeliveryLog, createPostgresEventQueue, createPostgresStore } from "connect-actions/postgres";
import pg from "pg";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

// One pool for the store, the event queue and the delivery log; replicas sharing the database share everything.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
pool.on("error", (error) => console.warn("postgres: idle connection failed", error)); // see Failure behaviour
const actions = createActions({
  store: await createPostgresStore({ pool }),
  eventQueue: await createPostgresEventQueue({ pool }),
  deliveryLog: await createPostgresDeliveryLog({ pool }),
  adminTokens: process.env.ADMIN_TOKEN ?? "change-me",
  eventTypes: ["greet.sent"],
});

const handler = connectNodeAdapter({
  routes: (router) => {
    router.service(GreetService, {
      async greet(req, ctx) {
        const greeting = `Hello, ${req.name}!`;
        // After the state change: event executions on "greet.sent" get it, delivered at least once.
        // `hops` is the request's Actions-Hop count: a change a target call made is not delivered again (loops).
        await actions.publisher.publish({
          aggregateID: req.name, aggregateType: "greet", resourceOwner: "", instanceID: "", version: "v1",
          sequence: 1, eventType: "greet.sent", createdAt: new Date(), userID: "", payload: { greeting },
          hops: hopsOf(ctx.requestHeader),
        });
        return { greeting };
      },
    });
    actions.registerManagement(router);
  },
  interceptors: [actions.interceptor],
});

const server = http.createServer(handler).listen(Number(process.env.PORT ?? 8080));
process.once("SIGTERM", () => server.close(() => void actions.close().then(() => pool.end())));
