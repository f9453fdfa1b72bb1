import { Code, ConnectError } from "@connectrpc/connect";
import { ExecutionFieldName, PublicKeyFieldName, TargetFieldName } from "../../gen/zitadel/action/v2/query_pb.js";
import { type PaginationRequest, TextFilterMethod, TimestampFilterMethod } from "../../gen/zitadel/filter/v2/filter_pb.js";
import type { Execution } from "../execution.js";
import type { Target } from "../target.js";
import type { TargetPublicKey } from "../target-key.js";

/**
 * defaultListLimit is the number of results a list returns when the request sets no limit: 100.
 */
export const defaultListLimit = 100;

/**
 * maxListLimit is the largest limit a list request may set: 1000.
 */
export const maxListLimit = 1000;

/**
 * Page is one page of a sorted list and what describes it.
 */
export interface Page<T> {
  readonly items: T[];
  /** Number of items before pagination. */
  readonly totalResult: bigint;
  /** The limit that was applied. */
  readonly appliedLimit: bigint;
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}

/**
 * paginate cuts a sorted list (ascending) into the requested page: the limit
 * defaults to defaultListLimit, more than maxListLimit is a ConnectError with
 * Code.InvalidArgument; `asc` false (the default) reverses the order first.
 */
export function paginate<T>(sortedAscending: readonly T[], pagination: PaginationRequest | undefined): Page<T> {
  const limit = pagination?.limit || defaultListLimit;
  if (limit > maxListLimit) {
    throw invalid(`pagination.limit must be at most ${maxListLimit}, got ${limit}`);
  }
  const offset = pagination?.offset ?? 0n;
  const ordered = pagination?.asc === true ? sortedAscending : [...sortedAscending].reverse();
  const start = offset > BigInt(ordered.length) ? ordered.length : Number(offset);
  return {
    items: ordered.slice(start, start + limit),
    totalResult: BigInt(sortedAscending.length),
    appliedLimit: BigInt(limit),
  };
}

/**
 * matchText compares `value` with `filter` by a TextFilterMethod. Throws a
 * ConnectError with Code.InvalidArgument for an unknown method.
 */
export function matchText(value: string, filter: string, method: TextFilterMethod): boolean {
  switch (method) {
    case TextFilterMethod.EQUALS:
      return value === filter;
    case TextFilterMethod.EQUALS_IGNORE_CASE:
      return value.toLowerCase() === filter.toLowerCase();
    case TextFilterMethod.STARTS_WITH:
      return value.startsWith(filter);
    case TextFilterMethod.STARTS_WITH_IGNORE_CASE:
      return value.toLowerCase().startsWith(filter.toLowerCase());
    case TextFilterMethod.CONTAINS:
      return value.includes(filter);
    case TextFilterMethod.CONTAINS_IGNORE_CASE:
      return value.toLowerCase().includes(filter.toLowerCase());
    case TextFilterMethod.ENDS_WITH:
      return value.endsWith(filter);
    case TextFilterMethod.ENDS_WITH_IGNORE_CASE:
      return value.toLowerCase().endsWith(filter.toLowerCase());
    default:
      throw invalid(`text filter method ${String(method)} is unknown`);
  }
}

/**
 * checkTextFilterMethod throws a ConnectError with Code.InvalidArgument for a
 * value that is not a TextFilterMethod.
 */
export function checkTextFilterMethod(method: TextFilterMethod): void {
  matchText("", "", method);
}

/** compareIds orders decimal IDs numerically and other IDs as strings. */
export function compareIds(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b) && a.length !== b.length) {
    return a.length - b.length;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ZITADEL's order of target types: webhook, call, async.
const targetTypeRank = { webhook: 0, call: 1, async: 2 } as const;

/**
 * sortTargets returns the targets in ascending order of a TargetFieldName
 * (default: creation date), ties broken by ID. Throws a ConnectError with
 * Code.InvalidArgument for an unknown column.
 */
export function sortTargets(targets: readonly Target[], column: TargetFieldName | undefined): Target[] {
  let compare: (a: Target, b: Target) => number;
  switch (column ?? TargetFieldName.UNSPECIFIED) {
    case TargetFieldName.UNSPECIFIED:
    case TargetFieldName.CREATED_DATE:
      compare = (a, b) => a.creationDate.getTime() - b.creationDate.getTime();
      break;
    case TargetFieldName.ID:
      compare = () => 0;
      break;
    case TargetFieldName.CHANGED_DATE:
      compare = (a, b) => a.changeDate.getTime() - b.changeDate.getTime();
      break;
    case TargetFieldName.NAME:
      compare = (a, b) => compareStrings(a.name, b.name);
      break;
    case TargetFieldName.TARGET_TYPE:
      compare = (a, b) => targetTypeRank[a.type] - targetTypeRank[b.type];
      break;
    case TargetFieldName.URL:
      compare = (a, b) => compareStrings(a.endpoint, b.endpoint);
      break;
    case TargetFieldName.TIMEOUT:
      compare = (a, b) => a.timeoutMs - b.timeoutMs;
      break;
    case TargetFieldName.INTERRUPT_ON_ERROR:
      compare = (a, b) => Number(a.interruptOnError) - Number(b.interruptOnError);
      break;
    default:
      throw invalid(`sorting_column ${String(column)} is not a TargetFieldName`);
  }
  return [...targets].sort((a, b) => compare(a, b) || compareIds(a.id, b.id));
}

/**
 * sortExecutions returns the executions in ascending order of an
 * ExecutionFieldName (default: creation date), ties broken by ID. Throws a
 * ConnectError with Code.InvalidArgument for an unknown column.
 */
export function sortExecutions(executions: readonly Execution[], column: ExecutionFieldName | undefined): Execution[] {
  let compare: (a: Execution, b: Execution) => number;
  switch (column ?? ExecutionFieldName.UNSPECIFIED) {
    case ExecutionFieldName.UNSPECIFIED:
    case ExecutionFieldName.CREATED_DATE:
      compare = (a, b) => a.creationDate.getTime() - b.creationDate.getTime();
      break;
    case ExecutionFieldName.ID:
      compare = () => 0;
      break;
    case ExecutionFieldName.CHANGED_DATE:
      compare = (a, b) => a.changeDate.getTime() - b.changeDate.getTime();
      break;
    default:
      throw invalid(`sorting_column ${String(column)} is not an ExecutionFieldName`);
  }
  return [...executions].sort((a, b) => compare(a, b) || compareStrings(a.id, b.id));
}

/**
 * sortPublicKeys returns the keys in ascending order of a PublicKeyFieldName
 * (default: creation date), ties broken by key ID; by expiration date, keys
 * that do not expire come last. Throws a ConnectError with
 * Code.InvalidArgument for an unknown column.
 */
export function sortPublicKeys(keys: readonly TargetPublicKey[], column: PublicKeyFieldName | undefined): TargetPublicKey[] {
  let compare: (a: TargetPublicKey, b: TargetPublicKey) => number;
  switch (column ?? PublicKeyFieldName.UNSPECIFIED) {
    case PublicKeyFieldName.UNSPECIFIED:
    case PublicKeyFieldName.CREATION_DATE:
      compare = (a, b) => a.creationDate.getTime() - b.creationDate.getTime();
      break;
    case PublicKeyFieldName.CHANGE_DATE:
      compare = (a, b) => a.changeDate.getTime() - b.changeDate.getTime();
      break;
    case PublicKeyFieldName.EXPIRATION_DATE:
      compare = (a, b) => expirationTime(a) - expirationTime(b);
      break;
    default:
      throw invalid(`sorting_column ${String(column)} is not a PublicKeyFieldName`);
  }
  return [...keys].sort((a, b) => compare(a, b) || compareIds(a.keyId, b.keyId));
}

/** expirationTime is a key's expiration in milliseconds, Infinity for a key that does not expire. */
function expirationTime(key: TargetPublicKey): number {
  return key.expirationDate?.getTime() ?? Number.POSITIVE_INFINITY;
}

/**
 * matchTimestamp returns a predicate comparing a time with `filter` by a
 * TimestampFilterMethod; undefined (never, as for a key that does not
 * expire) counts as later than any time. Throws a ConnectError with
 * Code.InvalidArgument naming `field` for an unknown method.
 */
export function matchTimestamp(filter: Date, method: TimestampFilterMethod, field: string): (time: Date | undefined) => boolean {
  const t = filter.getTime();
  const at = (time: Date | undefined) => time?.getTime() ?? Number.POSITIVE_INFINITY;
  switch (method) {
    case TimestampFilterMethod.EQUALS:
      return (time) => at(time) === t;
    case TimestampFilterMethod.AFTER:
      return (time) => at(time) > t;
    case TimestampFilterMethod.AFTER_OR_EQUALS:
      return (time) => at(time) >= t;
    case TimestampFilterMethod.BEFORE:
      return (time) => at(time) < t;
    case TimestampFilterMethod.BEFORE_OR_EQUALS:
      return (time) => at(time) <= t;
    default:
      throw invalid(`${field}.method ${String(method)} is not a TimestampFilterMethod`);
  }
}
