// "connect-actions/testing": the contract suites every store, event queue and delivery log passes (vitest).
// An adapter for another database proves itself by running them, as keyv's adapters run keyv's test suite.
export { type DeliveryLogFixture, deliveryRecord, describeDeliveryLogContract } from "./delivery-log-contract.js";
export { describeEventQueueContract, type EventQueueFixture } from "./event-queue-contract.js";
export { describeStoreContract, type StoreFixture, type StoreFixtureOptions } from "./store-contract.js";
export { codeOf, sleep, testJob } from "./support.js";
