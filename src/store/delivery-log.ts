import { Code, ConnectError } from "@connectrpc/connect";
import type { TargetCallRecord } from "../dispatch/target-dispatcher.js";

/**
 * DeliveryRecord is a TargetCallRecord as kept by a DeliveryLog, with its
 * excerpts (requestExcerpt, responseExcerpt) and test mark when the record
 * has them.
 */
export interface DeliveryRecord extends TargetCallRecord {
  /** Increasing with recording order. */
  readonly id: string;
}

/**
 * DeliveryQuery selects records of a DeliveryLog, newest first.
 */
export interface DeliveryQuery {
  /** Only the records of this instance. Default: of every instance. */
  readonly instanceId?: string;
  readonly targetId?: string;
  readonly executionId?: string;
  /** Only calls that failed. Default false. */
  readonly failedOnly?: boolean;
  /** Only calls that succeeded. Default false; not together with failedOnly. */
  readonly succeededOnly?: boolean;
  /** Only calls started at or after this time. */
  readonly since?: Date;
  /** Default 0. */
  readonly offset?: number;
  /** Default 100, at most 1000. */
  readonly limit?: number;
}

/**
 * DeliveryPage is a page of records and how many matched in all.
 */
export interface DeliveryPage {
  readonly total: number;
  readonly records: DeliveryRecord[];
}

/**
 * DeliveryLog keeps a record of target calls so that users can debug their
 * targets. `record` fits the TargetDispatcher's onCall option.
 */
export interface DeliveryLog {
  /** record keeps a call; it never throws and never waits. */
  record(record: TargetCallRecord): void;
  /** list returns matching records, newest first. Code.InvalidArgument for a bad limit or offset. */
  list(query?: DeliveryQuery): Promise<DeliveryPage>;
  /** flush resolves when every record so far can be listed. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * MemoryDeliveryLogOptions configures createMemoryDeliveryLog.
 */
export interface MemoryDeliveryLogOptions {
  /** How many records are kept, default 10 000; the oldest go first. */
  readonly capacity?: number;
}

/**
 * checkDeliveryQuery returns the offset and limit of a query, defaults
 * applied, or throws Code.InvalidArgument (also for failedOnly together with
 * succeededOnly).
 */
export function checkDeliveryQuery(query: DeliveryQuery): { offset: number; limit: number } {
  if (query.failedOnly === true && query.succeededOnly === true) {
    throw new ConnectError("failedOnly and succeededOnly exclude each other", Code.InvalidArgument);
  }
  const limit = query.limit === undefined || query.limit === 0 ? 100 : query.limit;
  const offset = query.offset ?? 0;
  if (!Number.isInteger(limit) || limit < 0 || limit > 1000) {
    throw new ConnectError("limit must be at most 1000", Code.InvalidArgument);
  }
  if (!Number.isInteger(offset) || offset < 0) {
    throw new ConnectError("offset must not be negative", Code.InvalidArgument);
  }
  return { offset, limit };
}

/**
 * createMemoryDeliveryLog returns a DeliveryLog that keeps the latest records
 * in this process.
 */
export function createMemoryDeliveryLog(options: MemoryDeliveryLogOptions = {}): DeliveryLog {
  const capacity = options.capacity ?? 10_000;
  // The records as given (recording costs a store, on the path of the call);
  // the kept copies with their IDs are made when listed.
  const ring: (TargetCallRecord | undefined)[] = new Array(capacity);
  let next = 0; // total recorded; ring[next % capacity] is the next slot, record i has ID i + 1
  return {
    record(r) {
      ring[next % capacity] = r;
      next++;
    },
    async list(query = {}) {
      const { offset, limit } = checkDeliveryQuery(query);
      const since = query.since?.getTime();
      const matched: number[] = [];
      for (let i = next - 1; i >= Math.max(0, next - capacity); i--) {
        const r = ring[i % capacity]!;
        if (query.instanceId !== undefined && r.instanceId !== query.instanceId) continue;
        if (query.targetId !== undefined && r.targetId !== query.targetId) continue;
        if (query.executionId !== undefined && r.executionId !== query.executionId) continue;
        if (query.failedOnly === true && r.error === undefined) continue;
        if (query.succeededOnly === true && r.error !== undefined) continue;
        if (since !== undefined && r.startTime.getTime() < since) continue;
        matched.push(i);
      }
      const records = matched.slice(offset, offset + limit).map((i): DeliveryRecord => Object.freeze({ ...ring[i % capacity]!, id: String(i + 1) }));
      return { total: matched.length, records };
    },
    async flush() {},
    async close() {},
  };
}
