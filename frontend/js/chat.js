// One streamed answer from POST /chat/completions, as a sequence of typed events:
//   {type: "opened", requestId}               the API admitted the request
//   {type: "progress", stage, sources}        "retrieving", then "generating" (strata.progress)
//   {type: "delta", text}                      answer text, as it is generated
//   {type: "final", strata, finishReason}      the last chunk: citations, confidence, validation
// An error — before the stream (an HTTP status) or inside it (its error event) — is thrown as an
// ApiError; a stream that ends without "[DONE]" is never taken for a complete answer.

import { ApiError, apiFetch } from "./api.js";
import { serverSentEvents } from "./sse.js";

const DONE = "[DONE]";

export async function* answerEvents({ model, messages, signal }) {
  const response = await apiFetch("/chat/completions", {
    method: "POST",
    body: { model, messages, stream: true, strata: { progress: true } },
    signal,
  });
  yield { type: "opened", requestId: response.headers.get("x-request-id") };
  let finishReason = null;
  try {
    for await (const { event, data } of serverSentEvents(response.body, { signal })) {
      if (event === "progress") {
        yield { type: "progress", ...JSON.parse(data) };
        continue;
      }
      if (data === DONE) return;
      const chunk = JSON.parse(data);
      if (chunk.error) throw ApiError.fromBody(chunk);
      for (const choice of chunk.choices || []) {
        if (choice.delta?.content) yield { type: "delta", text: choice.delta.content };
        if (choice.finish_reason) finishReason = choice.finish_reason;
      }
      if (chunk.strata) yield { type: "final", strata: chunk.strata, finishReason };
    }
  } catch (error) {
    signal?.throwIfAborted();
    if (error instanceof ApiError) throw error;
    throw ApiError.broken(); // the connection reset, or a line that is not JSON
  }
  signal?.throwIfAborted(); // stopped: not an answer, and not a broken one either
  throw ApiError.broken();
}
