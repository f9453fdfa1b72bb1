import http from "node:http";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createActions, createJwksHandler, jwksPath } from "connect-actions";
import { createPostgresSigningKeySource, createPostgresStore } from "connect-actions/postgres";
import pg from "pg";
import { GreetService } from "../gen/example/greet/v1/greet_pb.js";

// JWT and JWE payloads are signed with the instance's signing key; replicas share the keys through PostgreSQL
// (createMemorySigningKeySource() keeps them in this process). Targets verify with the JWKS at /oauth/v2/keys.
const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
const signingKeys = await createPostgresSigningKeySource({ pool });
const actions = createActions({ store: await createPostgresStore({ pool }), signingKeys, adminTokens: "change-me" });
const handler = connectNodeAdapter({
  routes: (router) => {
    router.service(GreetService, { greet: (req) => ({ greeting: `Hello, ${req.name}!` }) });
    actions.registerManagement(router);
  },
  interceptors: [actions.interceptor],
});
const jwks = createJwksHandler({ keys: signingKeys }); // instanceOf: the instance of a request, default ""
http.createServer((req, res) => (req.url === jwksPath ? jwks(req, res) : handler(req, res))).listen(8080);
