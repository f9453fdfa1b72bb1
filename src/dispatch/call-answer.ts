import { type DescMessage, fromJson, type JsonReadOptions, type JsonValue, type MessageShape } from "@bufbuild/protobuf";
import type { Target } from "../target.js";
import { errorDetail, executionFailed } from "./target-dispatcher.js";

/**
 * callAnswerMessage reads the JSON answer of a "call" target as the message it
 * replaces (the request or the response), with `readOptions` (the interceptor
 * refuses unknown fields). It throws what fails such a call: executionFailed
 * with the detail `target "<name>" answered a body that is not a <type>: <why>`.
 */
export function callAnswerMessage<Desc extends DescMessage>(
  schema: Desc,
  target: Target,
  answer: unknown,
  readOptions: Partial<JsonReadOptions>,
): MessageShape<Desc> {
  try {
    return fromJson(schema, answer as JsonValue, readOptions);
  } catch (e) {
    throw executionFailed(`target "${target.name}" answered a body that is not a ${schema.typeName}: ${errorDetail(e)}`);
  }
}
