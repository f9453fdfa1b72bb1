import { Code, ConnectError } from "@connectrpc/connect";
import { checkMaxHops, hopHeader } from "../dispatch/hop.js";
import { type ActionEvent, encodeEventPayload } from "./action-event.js";
import type { EventJob, EventQueue } from "./event-queue.js";
import type { ExecutionPlanner } from "../plan/execution-planner.js";

/**
 * EventPublisherOptions configures createEventPublisher.
 */
export interface EventPublisherOptions {
  readonly planner: ExecutionPlanner;
  readonly queue: EventQueue;
  /**
   * Loop protection, as ActionsInterceptorOptions.maxHops: an event whose
   * `hops` (the Actions-Hop count of the request that made the change) is at
   * least this many, and that an event execution would deliver, is refused
   * with Code.FailedPrecondition ("actions loop: ..."), so the change it
   * records is not made (in a transaction, as the outbox does) and nothing is
   * delivered. Event deliveries carry Actions-Hop: maxHops (see
   * EventWorkerOptions.maxHops), so a change a delivery's target makes in
   * turn is refused when an event execution would deliver it again. Default
   * defaultMaxHops (1).
   */
  readonly maxHops?: number;
}

/**
 * EventPublisher turns events into queued deliveries.
 */
export interface EventPublisher {
  /**
   * publish finds the best-matching event execution of each event in the
   * event's instance (the event type's, else the longest group's, else `all`) and enqueues one delivery
   * per target, all events in one enqueue. Resolves the number of deliveries
   * once they are queued (durably, with a durable queue). Rejects with
   * Code.FailedPrecondition, enqueuing nothing, when an event with deliveries
   * has `hops` of at least maxHops (a loop, see EventPublisherOptions.maxHops).
   */
  publish(events: ActionEvent | readonly ActionEvent[]): Promise<number>;
  /**
   * jobsFor returns the deliveries that publish would enqueue, for callers
   * that enqueue them themselves, for example in their own database
   * transaction. Rejects as publish does for a loop.
   */
  jobsFor(events: ActionEvent | readonly ActionEvent[]): Promise<EventJob[]>;
}

/**
 * createEventPublisher returns an EventPublisher that resolves executions with
 * the planner's current plan and writes to the queue.
 */
export function createEventPublisher(options: EventPublisherOptions): EventPublisher {
  const maxHops = checkMaxHops(options.maxHops);
  const jobsFor = async (events: ActionEvent | readonly ActionEvent[]): Promise<EventJob[]> => {
    const list: readonly ActionEvent[] = Array.isArray(events) ? events : [events as ActionEvent];
    const jobs: EventJob[] = [];
    for (const event of list) {
      // The events of one call usually share an instance: its plan is then looked up once.
      const plan = await options.planner.plan(event.instanceID);
      const match = plan.forEvent(event.eventType);
      if (match === undefined || match.targets.length === 0) continue;
      const hops = event.hops ?? 0;
      if (!(hops < maxHops)) {
        throw new ConnectError(
          `actions loop: this change was made by a request that a target call made (${hopHeader}: ${hops}) and its event ` +
            `"${event.eventType}" would be delivered to targets again (execution ${match.executionId}); ` +
            `the change is refused (maxHops ${maxHops})`,
          Code.FailedPrecondition,
        );
      }
      const body = encodeEventPayload(event);
      const orderingKey = `${event.instanceID}/${event.aggregateType}/${event.aggregateID}`;
      for (const target of match.targets) {
        jobs.push({
          instanceId: event.instanceID,
          targetId: target.id,
          executionId: match.executionId,
          eventType: event.eventType,
          orderingKey,
          body,
          createdAt: event.createdAt,
          timeoutMs: target.timeoutMs,
        });
      }
    }
    return jobs;
  };
  return {
    jobsFor,
    async publish(events) {
      const jobs = await jobsFor(events);
      if (jobs.length > 0) await options.queue.enqueue(jobs);
      return jobs.length;
    },
  };
}
