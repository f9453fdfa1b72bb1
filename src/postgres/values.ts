/**
 * isStorableText tells whether `value` is a string that PostgreSQL text can
 * hold: one without NUL characters. Anything else (a non-string, or a string
 * with NUL) is no stored key, so looking it up finds nothing.
 */
export function isStorableText(value: unknown): value is string {
  return typeof value === "string" && !value.includes("\0");
}

/**
 * storableText returns `value` as a string PostgreSQL text can hold: String(value)
 * with every NUL character replaced by U+FFFD.
 */
export function storableText(value: unknown): string {
  return String(value).replaceAll("\0", "\uFFFD");
}

/**
 * toDate returns a timestamp column's value as a Date: the driver gives a
 * Date, or a string where type parsing is configured so, or a number of
 * epoch milliseconds where the query selects that.
 */
export function toDate(value: Date | string | number): Date {
  return value instanceof Date ? value : new Date(value);
}

/**
 * unnestColumns returns the values of `keys` of every row, one array per key
 * in the order of `keys`, rows in their order: the parameters of a multi-row
 * INSERT that reads them with unnest($1::type[], $2::type[], ...).
 */
export function unnestColumns<R, K extends keyof R>(rows: readonly R[], keys: readonly K[]): unknown[][] {
  return keys.map((key) => rows.map((row) => row[key]));
}
