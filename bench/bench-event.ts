// The user event the event benches publish and queue.
import type { ActionEvent } from "../src/events/action-event.js";

/**
 * benchUserEvent is the bench's "user.human.added" of the user `aggregateID`, the n-th user of the
 * run (its user name and email), in the instance "bench-instance": a 355-byte payload once encoded.
 */
export function benchUserEvent(aggregateID: string, n: number): ActionEvent {
  return {
    aggregateID,
    aggregateType: "user",
    resourceOwner: "bench-org",
    instanceID: "bench-instance",
    version: "v2",
    sequence: 1,
    eventType: "user.human.added",
    createdAt: new Date(),
    userID: "bench-admin",
    payload: { userName: `user${n}@example.com`, firstName: "Bench", lastName: "User", email: `user${n}@example.com` },
  };
}
