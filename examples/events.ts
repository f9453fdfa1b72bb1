import {
  createEventPublisher,
  createEventWorker,
  createExecutionPlanner,
  createMemoryEventQueue,
  createMemoryStore,
  createTargetDispatcher,
} from "connect-actions";

// Events without createActions: the pieces it would make, shared by the publisher and the worker.
const store = createMemoryStore();
const planner = createExecutionPlanner(store); // shared with createActionsInterceptor({ planner, dispatcher })
const dispatcher = createTargetDispatcher();
const queue = createMemoryEventQueue(); // or await createPostgresEventQueue({ pool }) from "connect-actions/postgres"
createEventWorker({ queue, planner, dispatcher }).start();
const publisher = createEventPublisher({ planner, queue });

// After a state change: every event execution that matches "user.human.added" gets it, at least once.
await publisher.publish({
  aggregateID: "user-1",
  aggregateType: "user",
  resourceOwner: "org-1",
  instanceID: "",
  version: "v2",
  sequence: 1,
  eventType: "user.human.added",
  createdAt: new Date(),
  userID: "admin-1",
  payload: { userName: "alice" },
});
