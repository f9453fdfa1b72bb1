// The contract suites' job factory, under the name the tests use.
export { testJob as job } from "../../src/testing/support.js";
