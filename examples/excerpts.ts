import { createActions, createMemoryStore } from "connect-actions";

// Keep the start of every payload and answer in the delivery log (ListTargetCalls' request_excerpt and
// response_excerpt): at most 1 KiB each, header values and the values of these keys left out at any depth.
const actions = createActions({
  store: createMemoryStore(),
  adminTokens: process.env.ADMIN_TOKEN ?? "change-me",
  excerpts: { maxBytes: 1024, secretFields: ["password", "secret", "token"] },
});

// Each record of a call then has them: {"fullMethod":"...","request":{"password":"[redacted]",...},"headers":{"Host":"[redacted]"}}.
const { records } = await actions.deliveryLog.list({ limit: 1 });
console.log(records[0]?.requestExcerpt, records[0]?.responseExcerpt);
