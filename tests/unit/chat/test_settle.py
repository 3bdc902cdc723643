"""Settle and log: the pipeline reconciles the token reservation to what the turn really used —
a whole answer, a broken one, an abandoned one, one that never began — and writes one record."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from strata.auth import Principal
from strata.chat import ChatCompletionRequest, ChatPipeline, RequestContext
from strata.config import Settings
from strata.inference import ModelUnavailableError, TextDelta, token_counter
from strata.observability import RequestLog
from strata.throttle import InMemoryBucketStore, Limits, RateLimiter, RateLimitExceededError
from tests.fakes import RecordingRetriever, ScriptedModel, router_for

PRINCIPAL = Principal(tenant="acme", key_id="k1", tenant_limits=Limits(tokens_per_day=1_000_000))
NO_RETRIEVAL = {"retrieval": {"enabled": False}}


class CutAfter(ScriptedModel):
    def stream(self, request):
        self.requests.append(request)
        yield from (TextDelta(token) for token in self.tokens)
        raise ModelUnavailableError("connection dropped", target=self.name)


def pipeline(model: ScriptedModel, limiter: RateLimiter) -> ChatPipeline:
    return ChatPipeline(
        retriever=RecordingRetriever([]),
        router=router_for(model),
        settings=Settings(),
        limiter=limiter,
        log=RequestLog("test", emit_metrics=lambda metrics: None),
    )


def request(**fields) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "What do kangaroos eat?"}], "strata": NO_RETRIEVAL, **fields}
    )


@pytest.fixture
def limiter() -> Iterator[RateLimiter]:
    limiter = RateLimiter(InMemoryBucketStore())
    yield limiter
    limiter.close()


def tokens_today(limiter: RateLimiter) -> int:
    report = limiter.usage(tenant="acme", key_id="k1", key_limits=Limits(), tenant_limits=PRINCIPAL.tenant_limits)
    return report.tenant.tokens_today


def run(chat: ChatPipeline, asked: ChatCompletionRequest) -> list:
    return list(chat.stream(chat.start(asked, PRINCIPAL, RequestContext("r" * 32))))


def test_a_complete_answer_is_charged_its_reported_usage(limiter: RateLimiter) -> None:
    chat = pipeline(ScriptedModel(["Grass", " and", " leaves"]), limiter)
    chunks = run(chat, request(stream=True, stream_options={"include_usage": True}))
    assert tokens_today(limiter) == chunks[-1].usage.total_tokens == 11 + 3

    completion = chat.complete(chat.start(request(), PRINCIPAL, RequestContext("s" * 32)))
    assert tokens_today(limiter) == 14 + completion.usage.total_tokens


def test_a_broken_stream_is_charged_the_prompt_and_what_was_sent_and_says_so(limiter: RateLimiter) -> None:
    chat = pipeline(CutAfter(["Grass", " and"]), limiter)
    turn = chat.start(request(stream=True, stream_options={"include_usage": True}), PRINCIPAL, RequestContext("r"))
    chunks = []
    with pytest.raises(ModelUnavailableError):
        for chunk in chat.stream(turn):
            chunks.append(chunk)
    usage = chunks[-1].usage  # the last chunk before the error says what the broken answer cost
    sent = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert sent and "Grass and".startswith(sent)  # validation may still hold a word back when it breaks
    assert usage.completion_tokens == token_counter(None).count(sent)
    assert usage.prompt_tokens == turn.prompt_tokens > 0
    assert tokens_today(limiter) == usage.total_tokens
    assert turn.status == "error" and turn.usage is None


def test_a_client_that_leaves_is_charged_what_was_produced_for_it(limiter: RateLimiter) -> None:
    chat = pipeline(ScriptedModel([f"t{i} " for i in range(20)]), limiter)
    turn = chat.start(request(stream=True), PRINCIPAL, RequestContext("r"))
    stream = chat.stream(turn)
    for _ in range(4):  # the role chunk and three tokens
        next(stream)
    stream.close()  # what the SSE writer does when the client goes away
    assert turn.status == "client_disconnected"
    assert tokens_today(limiter) == turn.prompt_tokens + token_counter(None).count("t0 t1 t2 ")


def test_a_turn_that_fails_before_any_answer_is_charged_nothing(limiter: RateLimiter) -> None:
    chat = pipeline(CutAfter([]), limiter)
    with pytest.raises(ModelUnavailableError):
        run(chat, request(stream=True))
    assert tokens_today(limiter) == 0


def test_admission_refuses_over_the_limit_before_retrieval_and_logs_the_429(
    limiter: RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    model = ScriptedModel(["ok"])
    chat = pipeline(model, limiter)
    limited = Principal(tenant="acme", key_id="k2", key_limits=Limits(requests_per_minute=2))
    caplog.set_level(logging.INFO, logger="strata.requests")
    for _ in range(2):
        chat.complete(chat.start(request(), limited, RequestContext("r")))
    turn = chat.start(request(), limited, RequestContext("r"))
    with pytest.raises(RateLimitExceededError) as refused:
        chat.complete(turn)
    assert refused.value.limit == "requests" and refused.value.retry_after > 0
    assert len(model.requests) == 2 and turn.prompt is None  # never retrieved nor assembled
    records = [r for r in caplog.records if r.name == "strata.requests"]
    assert [r.request["outcome"] for r in records] == ["ok", "ok", "rate_limited"]
    assert records[-1].request["status"] == 429


def test_the_request_record_has_the_stages_tokens_and_validation(
    limiter: RateLimiter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="strata.requests")
    chat = pipeline(ScriptedModel(["Grass [7]"]), limiter)
    chat.complete(chat.start(request(), PRINCIPAL, RequestContext("r" * 32, correlation_id="apigw-1", auth_ms=1.5)))

    (record,) = [r.request for r in caplog.records if r.name == "strata.requests"]
    assert record["correlation_id"] == "apigw-1" and record["tenant"] == "acme"
    assert set(record["timings_ms"]) == {"auth", "queue", "admit", "retrieve", "assemble", "total"}
    assert record["prompt_tokens"] == 11 and record["completion_tokens"] == 1
    assert record["validation"] == "citations_removed"  # [7] of no sources
    assert "prompt" not in record and "answer" not in record  # content only when configured


def test_with_progress_a_rate_limit_is_still_raised_before_anything_is_sent(limiter: RateLimiter) -> None:
    chat = pipeline(ScriptedModel(["ok"]), limiter)
    limited = Principal(tenant="acme", key_id="k3", key_limits=Limits(requests_per_minute=1))
    asked = request(stream=True, strata={**NO_RETRIEVAL, "progress": True})
    first = list(chat.stream(chat.start(asked, limited, RequestContext("r")), progress=True))
    assert [type(item).__name__ for item in first[:2]] == ["StreamProgress", "StreamProgress"]

    refused = chat.stream(chat.start(asked, limited, RequestContext("r")), progress=True)
    with pytest.raises(RateLimitExceededError):
        next(refused)
