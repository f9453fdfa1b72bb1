import { Code, ConnectError } from "@connectrpc/connect";

/**
 * ExcerptOptions configures createExcerpter.
 */
export interface ExcerptOptions {
  /**
   * The longest excerpt in UTF-8 bytes, the truncation mark included: an
   * integer from minExcerptBytes (64) to maxExcerptBytes (65 536). Default
   * defaultExcerptBytes (2048).
   */
  readonly maxBytes?: number;
  /**
   * JSON keys whose values are left out ("[redacted]") wherever they occur,
   * at any depth, matched case-insensitively ("Password" matches
   * "password"). Default none. The values of the `headers` object of a
   * payload are always left out.
   */
  readonly secretFields?: readonly string[];
}

/**
 * Excerpter makes the excerpts of target calls that a delivery log keeps:
 * JSON text, redacted, at most maxBytes UTF-8 bytes.
 */
export interface Excerpter {
  /** The longest excerpt in UTF-8 bytes. */
  readonly maxBytes: number;
  /**
   * payload returns the excerpt of a JSON payload (before signing or
   * encryption): the values of its top-level `headers` object and of the
   * secret fields replaced by "[redacted]", written as JSON and truncated
   * (see truncateUtf8). A body that is not JSON is truncated as it is.
   */
  payload(json: string): string;
  /**
   * answer returns the excerpt of an answer's body: redacted and truncated
   * as a payload when it is JSON, else its text truncated as it is (nothing
   * in it can be recognized as secret); "" for an empty body.
   */
  answer(body: Uint8Array | string): string;
}

/** defaultExcerptBytes is the default of ExcerptOptions.maxBytes: 2048. */
export const defaultExcerptBytes = 2048;
/** minExcerptBytes is the smallest ExcerptOptions.maxBytes: 64. */
export const minExcerptBytes = 64;
/** maxExcerptBytes is the largest ExcerptOptions.maxBytes: 65 536. */
export const maxExcerptBytes = 65_536;

/** redacted replaces the values that excerpts leave out. */
export const redacted = "[redacted]";

/** truncationMark ends an excerpt that was cut: "…" (3 bytes in UTF-8). */
export const truncationMark = "…";

/** Objects and arrays nested deeper than this are replaced as a whole (see redact). */
const maxDepth = 64;

/**
 * createExcerpter returns an Excerpter. Throws a ConnectError with
 * Code.InvalidArgument for a maxBytes out of range or a secret field that is
 * not a non-empty string.
 */
export function createExcerpter(options: ExcerptOptions = {}): Excerpter {
  const maxBytes = options.maxBytes ?? defaultExcerptBytes;
  if (!Number.isInteger(maxBytes) || maxBytes < minExcerptBytes || maxBytes > maxExcerptBytes) {
    throw new ConnectError(
      `excerpts.maxBytes must be an integer from ${minExcerptBytes} to ${maxExcerptBytes}, got ${String(maxBytes)}`,
      Code.InvalidArgument,
    );
  }
  const secrets = new Set<string>();
  for (const [i, field] of (options.secretFields ?? []).entries()) {
    if (typeof field !== "string" || field === "") {
      throw new ConnectError(`excerpts.secretFields[${i}] must be a non-empty string`, Code.InvalidArgument);
    }
    secrets.add(field.toLowerCase());
  }

  const redact = (value: unknown, depth: number): unknown => {
    if (value === null || typeof value !== "object") return value;
    if (depth >= maxDepth) return "[too deep]";
    if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      // defineProperty: a key "__proto__" stays a key.
      const kept = secrets.has(key.toLowerCase()) ? redacted : depth === 0 && key === "headers" ? redactHeaders(v) : redact(v, depth + 1);
      Object.defineProperty(out, key, { value: kept, enumerable: true, writable: true, configurable: true });
    }
    return out;
  };

  const excerpt = (text: string): string => {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return truncateUtf8(text, maxBytes);
    }
    return truncateUtf8(JSON.stringify(redact(json, 0)), maxBytes);
  };

  return {
    maxBytes,
    payload: excerpt,
    answer(body) {
      const text = typeof body === "string" ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
      return text.trim() === "" ? "" : excerpt(text);
    },
  };
}

/** redactHeaders replaces the value of every header of a `headers` object by "[redacted]". */
function redactHeaders(headers: unknown): unknown {
  if (headers === null || typeof headers !== "object") return headers;
  if (Array.isArray(headers)) return headers.map(() => redacted);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(headers)) {
    Object.defineProperty(out, key, { value: redacted, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/**
 * truncateUtf8 returns `text` when it takes at most `maxBytes` UTF-8 bytes,
 * else its longest start that, followed by truncationMark ("…"), takes at
 * most `maxBytes`, never splitting a character (nor a surrogate pair).
 */
export function truncateUtf8(text: string, maxBytes: number): string {
  // Every UTF-16 unit takes at most 3 bytes: short texts need no counting.
  if (text.length * 3 <= maxBytes || Buffer.byteLength(text, "utf8") <= maxBytes) return text;
  const budget = maxBytes - Buffer.byteLength(truncationMark, "utf8");
  let bytes = 0;
  let end = 0;
  while (end < text.length) {
    const code = text.codePointAt(end)!;
    const units = code > 0xffff ? 2 : 1;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code > 0xffff ? 4 : 3;
    if (bytes + size > budget) break;
    bytes += size;
    end += units;
  }
  return text.slice(0, end) + truncationMark;
}
