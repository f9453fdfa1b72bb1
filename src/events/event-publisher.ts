import { type ActionEvent, encodeEventPayload } from "./action-event.js";
import type { EventJob, EventQueue } from "./event-queue.js";
import type { ExecutionPlanner } from "../plan/execution-planner.js";

/**
 * EventPublisherOptions configures createEventPublisher.
 */
export interface EventPublisherOptions {
  readonly planner: ExecutionPlanner;
  readonly queue: EventQueue;
}

/**
 * EventPublisher turns events into queued deliveries.
 */
export interface EventPublisher {
  /**
   * publish finds the best-matching event execution of each event in the
   * event's instance (the event type's, else the longest group's, else `all`) and enqueues one delivery
   * per target, all events in one enqueue. Resolves the number of deliveries
   * once they are queued (durably, with a durable queue).
   */
  publish(events: ActionEvent | readonly ActionEvent[]): Promise<number>;
  /**
   * jobsFor returns the deliveries that publish would enqueue, for callers
   * that enqueue them themselves, for example in their own database
   * transaction.
   */
  jobsFor(events: ActionEvent | readonly ActionEvent[]): Promise<EventJob[]>;
}

/**
 * createEventPublisher returns an EventPublisher that resolves executions with
 * the planner's current plan and writes to the queue.
 */
export function createEventPublisher(options: EventPublisherOptions): EventPublisher {
  const jobsFor = async (events: ActionEvent | readonly ActionEvent[]): Promise<EventJob[]> => {
    const list: readonly ActionEvent[] = Array.isArray(events) ? events : [events as ActionEvent];
    const jobs: EventJob[] = [];
    for (const event of list) {
      // The events of one call usually share an instance: its plan is then looked up once.
      const plan = await options.planner.plan(event.instanceID);
      const match = plan.forEvent(event.eventType);
      if (match === undefined || match.targets.length === 0) continue;
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
