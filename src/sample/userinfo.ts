import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { SetMetadataEntrySchema, type User } from "../../gen/zitadel/user/v2/user_service_pb.js";
import { runClaimsFunction } from "../functions/function-contracts.js";
import type { FunctionRunner } from "../functions/function-runner.js";
import type { Logger } from "../logger.js";
import type { NodeServerRequest, NodeServerResponse } from "../management/node-router-handler.js";
import { restStatusFromCode } from "../management/rest-gateway.js";

/**
 * UserinfoOptions configures createUserinfoHandler.
 */
export interface UserinfoOptions {
  /** The sample's users by ID. */
  readonly users: Map<string, User>;
  readonly runner: FunctionRunner;
  readonly logger: Logger;
  /** The instance whose preuserinfo executions run. */
  readonly instanceId: string;
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
      const token = /^Bearer\s+(\S+)$/i.exec(String(req.headers.authorization ?? ""))?.[1];
      const user = token === undefined ? undefined : options.users.get(token);
      if (user === undefined) {
        send(res, 401, { error: "invalid_token", error_description: "the bearer token must be the ID of an existing user" }, {
          "www-authenticate": 'Bearer error="invalid_token"',
        });
        return;
      }
      const profile = user.human?.profile;
      const claims: Record<string, unknown> = {
        sub: user.userId,
        name: profile?.displayName ?? `${profile?.givenName ?? ""} ${profile?.familyName ?? ""}`.trim(),
        given_name: profile?.givenName,
        family_name: profile?.familyName,
        preferred_username: user.username,
        email: user.human?.email?.email,
        email_verified: user.human?.email?.isVerified ?? false,
        updated_at: user.details?.changeDate ? Math.floor(timestampDate(user.details.changeDate).getTime() / 1000) : undefined,
        "urn:zitadel:iam:user:resourceowner:id": user.details?.resourceOwner,
      };
      const metadata = user.human?.metadata ?? [];
      try {
        const result = await runClaimsFunction(
          options.runner,
          "preuserinfo",
          {
            userinfo: claims,
            user: { id: user.userId, username: user.username, human: { profile, email: user.human?.email } },
            user_metadata: metadata.map((m) => ({ key: m.key, value: Buffer.from(m.value).toString("base64") })),
            org: { id: user.details?.resourceOwner ?? "" },
            user_grants: [],
            application: { client_id: "sample-client" },
          },
          claims,
          { instanceId: options.instanceId },
        );
        if (result.metadata.length > 0 && user.human !== undefined) {
          const kept = user.human.metadata.filter((m) => !result.metadata.some((n) => n.key === m.key));
          user.human.metadata = [...kept, ...result.metadata.map((m) => create(SetMetadataEntrySchema, m))];
        }
        send(res, 200, result.claims);
      } catch (e) {
        const error = ConnectError.from(e);
        options.logger.warn("preuserinfo failed", { user: user.userId, error: error.cause instanceof Error ? error.cause.message : error.message });
        send(res, restStatusFromCode(error.code), { error: "server_error", error_description: error.rawMessage });
      }
    })();
  };
}
