import { createActions, createMemoryStore, runClaimsFunction } from "connect-actions";

// preuserinfo as an OIDC provider would run it: the targets of "function/preuserinfo" may append claims.
const actions = createActions({ store: createMemoryStore(), worker: false });
const userinfo = { sub: "user-1", name: "Alice" };
const { claims, metadata } = await runClaimsFunction(
  actions.runner,
  "preuserinfo",
  { userinfo, user: { id: "user-1" }, org: { id: "org-1" } },
  userinfo,
);
console.log(claims, metadata);
await actions.close();
