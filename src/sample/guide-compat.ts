// Compatibility shims so that every published version of ZITADEL's guide "Test Actions Response"
// (docs/guides/integrate/actions/testing-response) runs verbatim against the sample server.
// They only apply to REST calls, and only to requests that ZITADEL's current API would reject.
import type { JsonObject } from "@bufbuild/protobuf";
import { createSetExecutionCompatAdapter } from "../management/action-service-compat.js";
import type { Logger } from "../logger.js";
import type { RestRequestAdapter } from "../management/rest-gateway.js";

const addHumanUserRequest = "zitadel.user.v2.AddHumanUserRequest";

/**
 * createProfileUnderUserIdAdapter returns a RestRequestAdapter for REST calls
 * of zitadel.user.v2.UserService/AddHumanUser, a compatibility shim for a
 * known typo of an older version of the published guide "Test Actions
 * Response": its example call sends the profile under `userId`
 * (`{"userId": {"givenName": ..., "familyName": ...}, "email": ...}`), while
 * the output it shows has it under `profile`.
 *
 * When `userId` (or `user_id`) is a JSON object, which can never be a valid
 * user ID, and the request has no `profile`, the object is moved to `profile`
 * and one warning is logged for the request. Everything else passes
 * unchanged: a string `userId` stays the user ID, and an object `userId` next
 * to a `profile` is left for the decoder to reject with InvalidArgument.
 */
export function createProfileUnderUserIdAdapter(logger: Logger): RestRequestAdapter {
  return (method, json) => {
    if (method.input.typeName !== addHumanUserRequest || "profile" in json) {
      return json;
    }
    const key = isObject(json.userId) ? "userId" : isObject(json.user_id) ? "user_id" : undefined;
    if (key === undefined) {
      return json;
    }
    const { [key]: profile, ...rest } = json;
    logger.warn("accepted the profile under userId, a known typo of the Test Actions Response guide", {
      rpc: `${method.parent.typeName}/${method.name}`,
    });
    return { ...rest, profile: profile! };
  };
}

/**
 * createGuideCompatAdapters returns the REST request adapters the sample
 * server uses so that all published versions of the guide "Test Actions
 * Response" work verbatim: the older object shape of SetExecution `targets`
 * (createSetExecutionCompatAdapter, logged at info level, with a warning when
 * an include had to move behind the targets) and the profile sent under
 * `userId` to AddHumanUser (createProfileUnderUserIdAdapter).
 */
export function createGuideCompatAdapters(logger: Logger): RestRequestAdapter[] {
  return [
    createSetExecutionCompatAdapter({
      onConverted(method, reordered) {
        const rpc = `${method.parent.typeName}/${method.name}`;
        if (reordered) {
          logger.warn("accepted the older object shape of targets; includes now run after all targets", { rpc });
        } else {
          logger.info("accepted the older object shape of targets", { rpc });
        }
      },
    }),
    createProfileUnderUserIdAdapter(logger),
  ];
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
