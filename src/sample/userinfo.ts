import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { Gender, type User } from "../../gen/zitadel/user/v2/user_pb.js";
import { hopsOf } from "../dispatch/hop.js";
import { rfc3339Nano } from "../events/action-event.js";
import { runClaimsFunction } from "../functions/function-contracts.js";
import type { FunctionRunner } from "../functions/function-runner.js";
import type { Logger } from "../logger.js";
import type { NodeServerRequest, NodeServerResponse } from "../management/node-router-handler.js";
import { restStatusFromCode } from "../management/rest-gateway.js";
import type { SampleUserStore } from "./user-store.js";

/**
 * UserinfoOptions configures createUserinfoHandler.
 */
export interface UserinfoOptions {
  /** The sample's users, of the instance of a request. */
  readonly users: SampleUserStore | ((instanceId: string) => SampleUserStore);
  readonly runner: FunctionRunner;
  readonly logger: Logger;
  /** The instance whose users and preuserinfo executions a request uses: an ID, or a function of the request. */
  readonly instanceId: string | ((req: NodeServerRequest) => string);
}

type Req = NodeServerRequest;
type Res = NodeServerResponse;

/**
 * userinfoPath is the path of the sample's OpenID Connect userinfo endpoint.
 */
export const userinfoPath = "/oidc/v1/userinfo";

/**
 * createUserinfoHandler returns the sample's OpenID Connect userinfo endpoint
 * (GET or POST /oidc/v1/userinfo), which shows the function "preuserinfo" at
 * work: the claims of the user, then the targets of the execution
 * "function/preuserinfo" append claims and log claims and set metadata on the
 * user. The sample has no token issuer: the bearer token is the user ID.
 * A real server takes the user from a verified access token.
 */
export function createUserinfoHandler(options: UserinfoOptions): (req: Req, res: Res) => void {
  const send = (res: Res, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers });
    res.end(text);
  };
  return (req, res) => {
    void (async () => {
      if (req.method !== "GET" && req.method !== "POST") {
        send(res, 405, { error: "invalid_request", error_description: "use GET or POST" }, { allow: "GET, POST" });
        return;
      }
      const instanceId = typeof options.instanceId === "string" ? options.instanceId : options.instanceId(req);
      const users = typeof options.users === "function" ? options.users(instanceId) : options.users;
      const token = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ""))?.[1];
      let entry: Awaited<ReturnType<SampleUserStore["get"]>>;
      try {
        entry = token === undefined ? undefined : await users.get(token);
      } catch (e) {
        const error = ConnectError.from(e);
        send(res, restStatusFromCode(error.code), { error: "server_error", error_description: error.rawMessage });
        return;
      }
      if (entry === undefined) {
        send(res, 401, { error: "invalid_token", error_description: "the bearer token must be the ID of an existing user" }, {
          "www-authenticate": 'Bearer error="invalid_token"',
        });
        return;
      }
      const { user, metadata } = entry;
      const human = user.type.case === "human" ? user.type.value : undefined;
      const profile = human?.profile;
      const claims: Record<string, unknown> = {
        sub: user.userId,
        name: profile?.displayName || `${profile?.givenName ?? ""} ${profile?.familyName ?? ""}`.trim(),
        given_name: profile?.givenName,
        family_name: profile?.familyName,
        preferred_username: user.preferredLoginName,
        email: human?.email?.email,
        email_verified: human?.email?.isVerified ?? false,
        updated_at: user.details?.changeDate ? Math.floor(timestampDate(user.details.changeDate).getTime() / 1000) : undefined,
        "urn:zitadel:iam:user:resourceowner:id": user.details?.resourceOwner,
      };
      try {
        const userMetadata = [...metadata].map(([key, value]) => ({ key, value: Buffer.from(value).toString("base64") }));
        // As ZITADEL's payload: empty lists are left out (user_metadata, user_grants).
        const result = await runClaimsFunction(
          options.runner,
          "preuserinfo",
          {
            userinfo: claims,
            user: zitadelUser(user),
            ...(userMetadata.length > 0 ? { user_metadata: userMetadata } : {}),
            org: { id: user.details?.resourceOwner ?? "" },
          },
          claims,
          // A request a target call made (Actions-Hop) is refused rather than run the function again: no loop.
          { instanceId, hops: hopsOf(headersOf(req.headers)) },
        );
        if (result.metadata.length > 0) await users.setMetadata(user.userId, result.metadata);
        send(res, 200, result.claims);
      } catch (e) {
        const error = ConnectError.from(e);
        options.logger.warn("preuserinfo failed", { user: user.userId, error: error.cause instanceof Error ? error.cause.message : error.message });
        send(res, restStatusFromCode(error.code), { error: "server_error", error_description: error.rawMessage });
      }
    })();
  };
}

/**
 * zitadelUser returns a user as ZITADEL puts it into the payload of the
 * functions preuserinfo and preaccesstoken (its query.User as Go's
 * encoding/json writes it): snake_case keys, empty values left out, state and
 * type as numbers (1: active, 1: human), the names and email flat in `human`.
 * Unset timestamps (password_changed, mfa_init_skipped) are left out, where
 * ZITADEL writes Go's zero time.
 */
export function zitadelUser(user: User): Record<string, unknown> {
  const human = user.type.case === "human" ? user.type.value : undefined;
  const profile = human?.profile;
  const date = (t: Parameters<typeof timestampDate>[0] | undefined) => (t === undefined ? undefined : rfc3339Nano(timestampDate(t)));
  const out = omitEmpty({
    id: user.userId,
    creation_date: date(user.details?.creationDate),
    change_date: date(user.details?.changeDate),
    resource_owner: user.details?.resourceOwner,
    sequence: Number(user.details?.sequence ?? 0n) || undefined,
    state: user.state || undefined,
    type: human !== undefined ? 1 : 2,
    username: user.username,
    login_names: user.loginNames.length > 0 ? [...user.loginNames] : undefined,
    preferred_login_name: user.preferredLoginName,
  });
  if (human !== undefined) {
    out.human = omitEmpty({
      first_name: profile?.givenName,
      last_name: profile?.familyName,
      nick_name: profile?.nickName,
      display_name: profile?.displayName,
      // A Go language.Tag is never left out: "und" when unset.
      preferred_language: profile?.preferredLanguage || "und",
      gender: profile?.gender === undefined || profile.gender === Gender.UNSPECIFIED ? undefined : profile.gender,
      email: human.email?.email,
      is_email_verified: human.email?.isVerified || undefined,
      phone: human.phone?.phone,
      is_phone_verified: human.phone?.isVerified || undefined,
      password_change_required: human.passwordChangeRequired || undefined,
    });
  }
  return out;
}

/** omitEmpty drops undefined and "" values, as Go's `omitempty` does. */
function omitEmpty(object: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(object).filter(([, v]) => v !== undefined && v !== ""));
}

/** headersOf returns the headers of a Node.js request as Headers (repeated headers joined with ", "). */
function headersOf(raw: Req["headers"]): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (name.startsWith(":") || value === undefined) continue;
    headers.set(name, Array.isArray(value) ? value.join(", ") : String(value));
  }
  return headers;
}
