/**
 * ActionEvent is a state change that event executions react to, shaped like
 * an event of ZITADEL's event store.
 */
export interface ActionEvent {
  readonly aggregateID: string;
  /** For example "user". */
  readonly aggregateType: string;
  /** The organization that owns the aggregate. */
  readonly resourceOwner: string;
  readonly instanceID: string;
  /** Version of the aggregate's event schema, for example "v2". */
  readonly version: string;
  /** Position of the event in its aggregate, increasing by one per event. */
  readonly sequence: number;
  /** For example "user.human.added". */
  readonly eventType: string;
  readonly createdAt: Date;
  /** The user who caused the event, "" when unknown. */
  readonly userID: string;
  /** The event's own data, sent as JSON. */
  readonly payload: unknown;
  /**
   * The Actions-Hop count of the request whose change this event records
   * (hopsOf(the request's headers)): 0, the default, for a change a client
   * made, 1 or more for one a target call made. Loop protection: an event
   * that event executions would deliver is refused when it is at least
   * EventPublisherOptions.maxHops. Not part of the payload.
   */
  readonly hops?: number;
}

/**
 * encodeEventPayload returns the JSON body that event targets receive, keys in
 * ZITADEL's order: `{aggregateID, aggregateType, resourceOwner, instanceID,
 * version, sequence, event_type, created_at, userID, event_payload}`, with
 * created_at in RFC 3339 with as many fraction digits as needed (Go's
 * RFC3339Nano). As in ZITADEL (Go's `omitempty`), empty strings, a sequence
 * of 0 and a missing payload (undefined or null) are left out.
 */
export function encodeEventPayload(event: ActionEvent): string {
  // Members are added only when set (no delete: the object keeps a fast shape for JSON.stringify).
  const body: Record<string, unknown> = {};
  const put = (key: string, value: unknown) => {
    if (value !== "" && value !== 0 && value !== undefined && value !== null) body[key] = value;
  };
  put("aggregateID", event.aggregateID);
  put("aggregateType", event.aggregateType);
  put("resourceOwner", event.resourceOwner);
  put("instanceID", event.instanceID);
  put("version", event.version);
  put("sequence", event.sequence);
  put("event_type", event.eventType);
  put("created_at", rfc3339Nano(event.createdAt));
  put("userID", event.userID);
  put("event_payload", event.payload);
  return JSON.stringify(body);
}

/**
 * rfc3339Nano formats a date as Go's time.RFC3339Nano does in UTC: trailing
 * zeros of the fraction are dropped, and the fraction with them when it is zero.
 */
export function rfc3339Nano(date: Date): string {
  return date.toISOString().replace(/\.?0+Z$/, "Z");
}
