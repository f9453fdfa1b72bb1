// The console's client of the ActionService: plain fetch calls to its REST paths (/v2/actions/...), with
// "Authorization: Bearer <token>". Messages are protobuf JSON (lowerCamelCase names, 64-bit integers as
// strings, durations as "10s", timestamps as RFC 3339).
// The pages only call methods of this client.

/** Names of the Connect/gRPC status codes, by number. */
export const codeNames = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
];

/** The code of Unauthenticated. */
export const UNAUTHENTICATED = 16;

/** The code of PermissionDenied: the token is valid, but not for the instance of this host. */
export const PERMISSION_DENIED = 7;

/** ApiError is a failed call: the gRPC code (number), its name, the message and the HTTP status (0: no answer). */
export class ApiError extends Error {
  /**
   * @param {number} code
   * @param {string} message
   * @param {number} status
   */
  constructor(code, message, status) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.codeName = codeNames[code] ?? `code ${code}`;
    this.status = status;
  }
}

const httpStatusCodes = { 400: 3, 401: 16, 403: 7, 404: 5, 409: 6, 412: 9, 413: 8, 429: 8, 499: 1, 500: 13, 501: 12, 503: 14, 504: 4 };

/** Largest page the ActionService's list calls accept. */
const maxLimit = 1000;

/**
 * createApi returns the client.
 * @param {{ baseUrl: string, token: () => string, onUnauthenticated?: (error: ApiError) => void, timeoutMs?: number }} options
 */
export function createApi(options) {
  const timeoutMs = options.timeoutMs ?? 30_000;

  /**
   * call sends one REST request and returns the JSON answer.
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   */
  async function call(method, path, body) {
    const headers = { authorization: `Bearer ${options.token()}`, accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(options.baseUrl + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (e) {
      const reason = e instanceof DOMException && e.name === "TimeoutError" ? `no answer within ${timeoutMs / 1000} s` : e instanceof Error ? e.message : String(e);
      throw new ApiError(14, `The ActionService at ${options.baseUrl || location.origin} could not be reached: ${reason}`, 0);
    }
    const text = await response.text();
    let json;
    try {
      json = text === "" ? {} : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!response.ok) {
      const code = typeof json?.code === "number" ? json.code : (httpStatusCodes[response.status] ?? 2);
      const message = typeof json?.message === "string" && json.message !== "" ? json.message : `HTTP ${response.status} ${response.statusText}`;
      const error = new ApiError(code, message, response.status);
      if (code === UNAUTHENTICATED) options.onUnauthenticated?.(error);
      throw error;
    }
    if (json === undefined) throw new ApiError(13, `${method} ${path} answered something that is not JSON`, response.status);
    return json;
  }

  /**
   * listAll pages through a list call that takes `pagination` and returns `pagination.totalResult`.
   * @param {string} path
   * @param {Record<string, unknown>} request
   * @param {string} key the repeated field of the answer
   */
  async function listAll(path, request, key) {
    const items = [];
    for (let offset = 0; ; ) {
      const page = await call("POST", path, { ...request, pagination: { offset: String(offset), limit: maxLimit, asc: true } });
      const got = page[key] ?? [];
      items.push(...got);
      offset += got.length;
      const total = Number(page.pagination?.totalResult ?? 0);
      if (got.length === 0 || offset >= total) return items;
    }
  }

  const id = (value) => encodeURIComponent(value);

  return {
    /** ListTargets, every page, sorted by name. */
    listTargets: () => listAll("/v2/actions/targets/search", { sortingColumn: "TARGET_FIELD_NAME_NAME" }, "targets"),
    /** GetTarget. */
    getTarget: (targetId) => call("GET", `/v2/actions/targets/${id(targetId)}`).then((r) => r.target),
    /** CreateTarget: returns { id, creationDate, signingKey }. */
    createTarget: (target) => call("POST", "/v2/actions/targets", target),
    /** UpdateTarget: the fields given change. */
    updateTarget: (targetId, patch) => call("POST", `/v2/actions/targets/${id(targetId)}`, patch),
    /** UpdateTarget with expirationSigningKey "0s": a new signing key at once; returns { changeDate, signingKey }. */
    rotateSigningKey: (targetId) => call("POST", `/v2/actions/targets/${id(targetId)}`, { expirationSigningKey: "0s" }),
    /** DeleteTarget. */
    deleteTarget: (targetId) => call("DELETE", `/v2/actions/targets/${id(targetId)}`),
    /**
     * ListExecutions of one type ("EXECUTION_TYPE_REQUEST", ...), or all types when none is given.
     * @param {string} [executionType]
     */
    listExecutions: (executionType) =>
      listAll(
        "/v2/actions/executions/search",
        executionType ? { filters: [{ executionTypeFilter: { executionType } }] } : {},
        "executions",
      ),
    /** SetExecution: an empty `targets` and `includes` removes the execution. */
    setExecution: (condition, targets, includes = []) => call("PUT", "/v2/actions/executions", { condition, targets, includes }),
    /** ListExecutionMethods: full method names. */
    listExecutionMethods: () => call("GET", "/v2/actions/executions/methods").then((r) => r.methods ?? []),
    /** ListExecutionServices: service names. */
    listExecutionServices: () => call("GET", "/v2/actions/executions/services").then((r) => r.services ?? []),
    /** ListExecutionFunctions: function names. */
    listExecutionFunctions: () => call("GET", "/v2/actions/executions/functions").then((r) => r.functions ?? []),
    /**
     * ListTargetCalls, newest first: { calls, total }.
     * @param {{ targetId?: string, executionId?: string, failedOnly?: boolean, succeededOnly?: boolean, limit?: number }} filter
     */
    listTargetCalls: async (filter) => {
      const answer = await call("POST", "/v2/actions/targets/calls/search", {
        pagination: { limit: filter.limit ?? 100 },
        targetId: filter.targetId || undefined,
        executionId: filter.executionId || undefined,
        failedOnly: filter.failedOnly || undefined,
        succeededOnly: filter.succeededOnly || undefined,
      });
      return { calls: answer.calls ?? [], total: Number(answer.pagination?.totalResult ?? 0) };
    },
    /** ListFailedEventDeliveries, newest first. */
    listFailedEventDeliveries: (limit = 100) => call("GET", `/v2/actions/events/failed?limit=${limit}`).then((r) => r.deliveries ?? []),
    /**
     * RetryFailedEventDeliveries: requeues the given-up deliveries the selection names (one by `id`, or all
     * of `targetId` and/or `eventType`); resolves how many went back into the queue.
     * @param {{ id?: string, targetId?: string, eventType?: string }} selection
     */
    retryFailedEventDeliveries: (selection) =>
      call("POST", "/v2/actions/events/failed/retry", {
        id: selection.id || undefined,
        targetId: selection.targetId || undefined,
        eventType: selection.eventType || undefined,
      }).then((r) => Number(r.retried ?? 0)),
    /**
     * ExplainExecution: { execution?, targets: [{ targetId, targetName, via, targetType, endpoint, interruptOnError, timeout }],
     * levels: [{ executionId, condition, exists, matched }] } for a condition.
     */
    explainExecution: (condition) =>
      call("POST", "/v2/actions/executions/explain", { condition }).then((r) => ({ execution: r.execution, targets: r.targets ?? [], levels: r.levels ?? [] })),
    /**
     * TestTarget: sends a sample payload of the condition to the target; resolves { status, latency, error,
     * payloadExcerpt, answerExcerpt, answerParses?, parseError }.
     */
    testTarget: (targetId, condition) =>
      call("POST", `/v2/actions/targets/${id(targetId)}/test`, { condition }).then((r) => ({
        status: Number(r.status ?? 0),
        latency: r.latency,
        error: r.error ?? "",
        payloadExcerpt: r.payloadExcerpt ?? "",
        answerExcerpt: r.answerExcerpt ?? "",
        answerParses: r.answerParses,
        parseError: r.parseError ?? "",
      })),
  };
}
