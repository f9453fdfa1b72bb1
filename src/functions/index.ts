// Functions: named hooks (preuserinfo, preaccesstoken, presamlresponse) that call the targets of function executions.
export {
  type ClaimsFunctionRequest,
  type ClaimsFunctionResult,
  checkFunctionAnswer,
  functionSamplePayload,
  knownFunctions,
  type MetadataEntry,
  runClaimsFunction,
  runSamlFunction,
  type SamlAttribute,
  type SamlFunctionResult,
} from "./function-contracts.js";
export {
  createFunctionRunner,
  type FunctionRunner,
  type FunctionRunnerOptions,
  type FunctionRunOptions,
} from "./function-runner.js";
