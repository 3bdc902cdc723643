// The page's stream reader, error model and trust wording, without a browser.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, rateLimits, retryAfter } from "../../frontend/js/api.js";
import { serverSentEvents } from "../../frontend/js/sse.js";
import { confidence, notes, sourcesByDocument } from "../../frontend/js/trust.js";

function body(...parts) {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(encoder.encode(part));
      controller.close();
    },
  });
}

async function collect(stream) {
  const events = [];
  for await (const event of serverSentEvents(stream)) events.push(event);
  return events;
}

test("events are framed by blank lines, whatever the reads split", async () => {
  const events = await collect(body("event: progress\r\ndata: {\"stage\":", "\"retrieving\"}\r", "\n\r\n: comment\n\ndata: a\ndata: b\n\n", "data: [DONE]\n\n"));
  assert.deepEqual(events, [
    { event: "progress", data: '{"stage":"retrieving"}' },
    { event: "message", data: "a\nb" },
    { event: "message", data: "[DONE]" },
  ]);
});

test("an event cut off before its blank line is not delivered", async () => {
  assert.deepEqual(await collect(body("data: {\"choices\": []}\n\ndata: {\"cho")), [{ event: "message", data: '{"choices": []}' }]);
});

test("errors say what the page should do", () => {
  const waking = ApiError.fromBody({ error: { code: "model_waking", message: "starting" }, strata: { waking: true, retry_after_s: 20 } });
  assert.equal(waking.kind, "waking");
  assert.equal(waking.retryAfterS, 20);
  assert.equal(ApiError.fromBody({ error: { code: "rate_limit_exceeded" } }, { status: 429 }).kind, "limited");
  assert.equal(ApiError.fromBody({ error: { code: "model_unavailable", type: "api_error" } }).kind, "unavailable");
  assert.equal(ApiError.fromBody({ error: { code: "context_length_exceeded", type: "invalid_request_error" } }).kind, "invalid");
  assert.equal(ApiError.fromBody({}, { status: 401 }).kind, "auth");
  assert.equal(ApiError.broken().kind, "unavailable");
});

test("Retry-After and the x-ratelimit headers are read as OpenAI sends them", () => {
  assert.equal(retryAfter("12"), 12);
  assert.equal(retryAfter(null), null);
  assert.ok(retryAfter(new Date(Date.now() + 30_000).toUTCString()) >= 29);
  const headers = new Headers({ "x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "12s" });
  assert.deepEqual(rateLimits(headers), { requests: { limit: 60, remaining: 0, reset: "12s" } });
});

test("confidence is a level with its reason; no score when the answer used no sources", () => {
  assert.equal(confidence({ confidence: 0.82 }).level, "high");
  assert.match(confidence({ confidence: 0.82 }).explanation, /^82% of the answer's key words/);
  assert.equal(confidence({ confidence: 0.5 }).level, "medium");
  assert.equal(confidence({ confidence: 0.1 }).level, "low");
  assert.equal(confidence({ confidence: null }).level, "none");
});

test("citations are grouped per document, cited ones apart", () => {
  const citation = (index, document_id, referenced) => ({ index, document_id, referenced, title: document_id });
  const { cited, uncited } = sourcesByDocument([citation(1, "a", true), citation(2, "b", false), citation(3, "a", true), citation(4, "a", false)]);
  assert.deepEqual(cited.map((d) => [d.document_id, d.passages.map((p) => p.index)]), [["a", [1, 3]]]);
  assert.deepEqual(uncited.map((d) => [d.document_id, d.passages.map((p) => p.index)]), [["b", [2]], ["a", [4]]]);
});

test("notes say what validation changed and when no source was used", () => {
  assert.deepEqual(notes({ citations: [], context: { sources_below_floor: 2 }, validation: {} }), [
    "No sources used: 2 passages found in your documents, none close enough to the question.",
  ]);
  const lines = notes({
    citations: [{ referenced: true }],
    context: {},
    validation: { citations_removed: 2, redacted: { email: 1, phone: 2 }, loop_stopped: true },
  });
  assert.deepEqual(lines, [
    "2 citations pointing at no source were removed.",
    "Personal data hidden: 1 e-mail address, 2 phone numbers.",
    "The answer began repeating itself and was cut there.",
  ]);
});
