// One streamed answer as the page reads it, against a stubbed fetch: complete, broken, failed, stopped.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

const storage = () => {
  const items = new Map();
  return { getItem: (k) => items.get(k) ?? null, setItem: (k, v) => items.set(k, String(v)), removeItem: (k) => items.delete(k) };
};
globalThis.localStorage = storage();
globalThis.sessionStorage = storage();

const { answerEvents } = await import("../../frontend/js/chat.js");
const { describeError } = await import("../../frontend/js/turn.js");

let sent = [];
function serve(status, parts, headers = {}) {
  globalThis.fetch = async (url, options) => {
    if (String(url).endsWith("config.json")) return new Response("{}", { status: 404 });
    sent.push({ url: String(url), options });
    const body = new ReadableStream({
      start(controller) {
        for (const part of parts) controller.enqueue(new TextEncoder().encode(part));
        controller.close();
      },
    });
    return new Response(body, { status, headers: { "content-type": "text/event-stream", ...headers } });
  };
}

const chunk = (content, extra = {}) => `data: ${JSON.stringify({ choices: [{ delta: { content }, finish_reason: null }], ...extra })}\n\n`;

async function collect(signal) {
  const events = [];
  try {
    for await (const event of answerEvents({ model: "default", messages: [{ role: "user", content: "q" }], signal })) events.push(event);
  } catch (error) {
    return { events, error };
  }
  return { events, error: null };
}

beforeEach(() => {
  sent = [];
  localStorage.setItem("strata.apiKey", "sk-strata-abc-secret");
});

test("a complete answer: progress, text, the final chunk, [DONE]; the key and progress are asked for", async () => {
  const final = `data: ${JSON.stringify({ choices: [{ delta: {}, finish_reason: "length" }], strata: { request_id: "r1", citations: [] } })}\n\n`;
  serve(200, ['event: progress\ndata: {"stage":"generating","sources":2}\n\n', chunk("Hel"), chunk("lo"), final, "data: [DONE]\n\n"], { "x-request-id": "r1" });
  const { events, error } = await collect();
  assert.equal(error, null);
  assert.deepEqual(events.map((e) => e.type), ["opened", "progress", "delta", "delta", "final"]);
  assert.equal(events[0].requestId, "r1");
  assert.equal(events[1].sources, 2);
  assert.equal(events.at(-1).finishReason, "length");
  const request = sent[0];
  assert.equal(request.url, "/v1/chat/completions");
  assert.equal(request.options.headers.Authorization, "Bearer sk-strata-abc-secret");
  assert.deepEqual(JSON.parse(request.options.body).strata, { progress: true });
});

test("a stream that ends without [DONE] is broken, never complete", async () => {
  serve(200, [chunk("Half an ans")]);
  const { events, error } = await collect();
  assert.equal(events.at(-1).text, "Half an ans");
  assert.equal(error.code, "stream_broken");
  assert.equal(error.kind, "unavailable");
});

test("an error event ends the stream with what it says; waking comes with when to retry", async () => {
  serve(200, [chunk("Gra"), 'data: {"error":{"message":"down","type":"api_error","code":"model_unavailable"}}\n\n']);
  assert.equal((await collect()).error.kind, "unavailable");
  serve(200, ['event: progress\ndata: {"stage":"retrieving"}\n\n', 'data: {"error":{"code":"model_waking"},"strata":{"waking":true,"retry_after_s":20}}\n\n']);
  const { error } = await collect();
  assert.equal(error.kind, "waking");
  assert.equal(describeError(error).countdownS, 20);
  assert.equal(describeError(error).autoRetry, true);
});

test("an HTTP error is an ApiError with the status, Retry-After and limits", async () => {
  serve(429, ['{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}'], {
    "content-type": "application/json",
    "retry-after": "17",
    "x-ratelimit-limit-requests": "5",
    "x-ratelimit-remaining-requests": "0",
  });
  const { events, error } = await collect();
  assert.deepEqual(events, []);
  assert.equal(error.kind, "limited");
  assert.equal(error.retryAfterS, 17);
  const { text, countdownS, autoRetry } = describeError(error);
  assert.match(text, /\(5 requests per minute\)/);
  assert.equal(countdownS, 17);
  assert.equal(autoRetry, false);
});

test("a stopped answer is an abort, not an answer and not a failure", async () => {
  const controller = new AbortController();
  globalThis.fetch = async () => new Response(new ReadableStream({
    start(stream) {
      stream.enqueue(new TextEncoder().encode(chunk("Some")));
      setTimeout(() => controller.abort(), 10); // the stream stays open: the reader stops it
    },
  }), { status: 200 });
  const { events, error } = await collect(controller.signal);
  assert.equal(events.at(-1).text, "Some");
  assert.equal(error.name, "AbortError");
});
