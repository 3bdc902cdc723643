from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from strata.auth import Principal
from strata.chat import (
    ChatCompletionRequest,
    ChatPipeline,
    ChatTurn,
    ContextWindowExceededError,
    RequestContext,
    StreamProgress,
)
from strata.config import RESOURCES, Settings
from strata.inference import ResponseCache, StreamInterruptedError, UnknownModelError
from strata.retrieval import SearchHit, SearchMode
from tests.fakes import RecordingRetriever, ScriptedModel, hit, router_for


def service(
    model: ScriptedModel,
    hits: list[SearchHit],
    *,
    cache: ResponseCache | None = None,
    target: dict | None = None,
    **settings: Any,
) -> tuple[ChatPipeline, RecordingRetriever]:
    retriever = RecordingRetriever(hits)
    chat = ChatPipeline(
        retriever=retriever, router=router_for(model, **(target or {})), settings=Settings(**settings), cache=cache
    )
    return chat, retriever


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "What do kangaroos eat?"}], **fields}
    )


PRINCIPAL = Principal(tenant="acme", key_id="k")


def turn(chat: ChatPipeline, asked: ChatCompletionRequest, request_id: str = "r") -> ChatTurn:
    return chat.start(asked, PRINCIPAL, RequestContext(request_id))


def wire(chunks: Iterator[Any]) -> list[dict[str, Any]]:
    """The chunks as they go on the wire (what the SSE events carry)."""
    return [json.loads(chunk.model_dump_json()) for chunk in chunks]


def test_stream_forwards_each_token_and_the_finish_chunk_carries_citations() -> None:
    model = ScriptedModel(["Grass", " [1]", "."])
    chat, retriever = service(model, [hit("kangaroo", 0, 0.9), hit("wombat", 2, 0.4)])
    chunks = wire(chat.stream(turn(chat, request(stream=True), "req1")))

    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    contents = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    # Validation may hold a word back until the next token shows it is not personal data.
    assert "".join(contents) == "Grass [1]." and len(contents) >= 2
    assert all(c["id"] == "chatcmpl-req1" and c["model"] == "default" for c in chunks)
    assert "strata" not in chunks[0]
    citations = chunks[-1]["strata"]["citations"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert [(c["source_key"], c["referenced"]) for c in citations] == [
        ("tenants/acme/kangaroo.txt", True),
        ("tenants/acme/wombat.txt", False),
    ]
    assert chunks[-1]["strata"]["target"] == "default"
    assert retriever.calls[0]["tenant"] == "acme"


def test_with_progress_the_stream_says_it_retrieves_then_generates_before_the_first_chunk() -> None:
    model = ScriptedModel(["Grass", " [1]"])
    chat, retriever = service(model, [hit("kangaroo", 0, 0.9), hit("wombat", 2, 0.4)])
    asked = request(stream=True, strata={"progress": True})
    stages: list[tuple[str, int | None, int]] = []
    items = []
    for item in chat.stream(turn(chat, asked), progress=True):
        if isinstance(item, StreamProgress):  # what had run when it came
            stages.append((item.stage, item.sources, len(retriever.calls)))
        items.append(item)

    assert stages == [("retrieving", None, 0), ("generating", 2, 1)]
    assert [type(item).__name__ for item in items[:3]] == ["StreamProgress", "StreamProgress", "ChatCompletionChunk"]
    assert wire(items[2:])[-1]["strata"]["citations"][0]["text"] == "Kangaroos eat grass."
    assert not any(isinstance(item, StreamProgress) for item in chat.stream(turn(chat, request(stream=True))))


def test_stream_with_include_usage_ends_with_a_usage_chunk() -> None:
    chat, _ = service(ScriptedModel(["Hi", "!"]), [])
    asked = request(stream=True, stream_options={"include_usage": True})
    chunks = wire(chat.stream(turn(chat, asked, "r")))
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_prompt_numbers_sources_in_rank_order_within_the_window_less_max_tokens() -> None:
    model = ScriptedModel(["ok"])
    long_text = "Kangaroos eat grass and shrubs. " * 40  # about 300 tokens a source
    hits = [hit(f"d{i}", i, 1 - i / 10, long_text) for i in range(6)]
    chat, _ = service(model, hits, target={"context_window": 1000, "max_output_tokens": 64, "tokenizer": "smollm2"})
    prepared = turn(chat, request())
    reply = chat.complete(prepared)

    system, question = model.requests[0].messages
    assert system.role == "system" and question.role == "user"
    assert '<source id="1" title="D0">' in question.content and '<source id="2" title="D1">' in question.content
    assert '<source id="4"' not in question.content  # the lowest-ranked did not fit
    context = reply.strata.context
    assert context.prompt_tokens <= context.budget == 1000 - 64
    assert (
        context.sources_used == len(prepared.prompt.sources) and context.sources_used + context.sources_dropped == 4
    )  # k
    assert question.content.endswith("\n\nQuestion: What do kangaroos eat?")


def test_retrieval_options_from_the_strata_extension_reach_the_retriever() -> None:
    chat, retriever = service(ScriptedModel(["ok"]), [hit("a", 0, 1.0)])
    chat.complete(turn(chat, request(strata={"retrieval": {"k": 1, "mode": "keyword", "document_ids": ["a"]}})))
    assert retriever.calls[0] == {
        "tenant": "acme",
        "query": "What do kangaroos eat?",
        "k": 1,
        "mode": SearchMode.KEYWORD,
        "document_ids": ["a"],
    }


def test_retrieval_can_be_switched_off() -> None:
    chat, retriever = service(ScriptedModel(["ok"]), [hit("a", 0, 1.0)])
    prepared = turn(chat, request(strata={"retrieval": {"enabled": False}}))
    chat.complete(prepared)
    assert retriever.calls == [] and prepared.prompt.sources == []


def test_max_tokens_defaults_to_the_targets_limit_and_the_prompt_gets_the_rest() -> None:
    model = ScriptedModel(["ok"])
    chat, _ = service(model, [], target={"context_window": 1000, "max_output_tokens": 64})
    chat.complete(turn(chat, request(), "r"))
    assert model.requests[0].max_tokens == 64

    prepared = turn(chat, request(max_tokens=800))
    chat.complete(prepared)
    assert prepared.model_request.max_tokens == 800 and prepared.prompt_tokens <= 200

    # A max_tokens that leaves no room for the question is the caller's error, as OpenAI's.
    with pytest.raises(ContextWindowExceededError, match="lower max_tokens"):
        chat.complete(turn(chat, request(max_tokens=4000)))


def test_a_prompt_that_cannot_fit_the_window_is_refused_before_any_call() -> None:
    model = ScriptedModel(["ok"])
    chat, _ = service(model, [], target={"context_window": 64, "max_output_tokens": 8})
    long = request(messages=[{"role": "user", "content": "kangaroo " * 200}])
    with pytest.raises(ContextWindowExceededError, match="more than the 56 that this model's context window"):
        chat.complete(turn(chat, long))
    assert model.requests == []


def test_buffered_completion_has_usage_and_the_extension() -> None:
    chat, _ = service(ScriptedModel(["Grass [1]"]), [hit("kangaroo", 0, 0.9)])
    reply = chat.complete(turn(chat, request(), "r9")).model_dump()
    assert reply["id"] == "chatcmpl-r9" and reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "Grass [1]"}
    assert reply["usage"] == {"prompt_tokens": 11, "completion_tokens": 1, "total_tokens": 12}
    assert reply["strata"]["citations"][0]["referenced"] is True
    assert reply["strata"]["cache_hit"] is False


def test_unknown_model_alias_is_refused() -> None:
    chat, _ = service(ScriptedModel([]), [])
    with pytest.raises(UnknownModelError):
        turn(chat, request(model="gpt-4"))


@pytest.fixture
def cache() -> Iterator[ResponseCache]:
    spec = RESOURCES.response_cache_table
    with mock_aws():
        table = boto3.resource("dynamodb", region_name="us-east-1").create_table(
            TableName=spec.name,
            KeySchema=[{"AttributeName": spec.partition_key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": spec.partition_key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield ResponseCache(table)


def test_a_deterministic_answer_is_cached_and_replayed_as_a_stream(cache: ResponseCache) -> None:
    model = ScriptedModel(["Kangaroos eat ", "grass [1]."])
    chat, _ = service(model, [hit("kangaroo", 0, 0.9)], cache=cache)
    asked = request(temperature=0, stream=True)

    first = wire(chat.stream(turn(chat, asked, "r1")))
    second = wire(chat.stream(turn(chat, asked, "r2")))

    text = lambda chunks: "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])  # noqa: E731
    assert len(model.requests) == 1
    assert text(second) == text(first) == "Kangaroos eat grass [1]."
    assert len(second) > 3  # replayed in pieces, not one blob
    assert first[-1]["strata"]["cache_hit"] is False and second[-1]["strata"]["cache_hit"] is True
    assert second[-1]["strata"]["citations"][0]["referenced"] is True

    buffered = request(temperature=0)
    assert chat.complete(turn(chat, buffered, "r3")).strata.cache_hit is True


def test_the_cache_is_bypassed_when_asked_and_for_sampled_requests(cache: ResponseCache) -> None:
    model = ScriptedModel(["ok"])
    chat, _ = service(model, [], cache=cache)
    for asked in (request(temperature=0, strata={"cache": False}), request(temperature=0.7), request()):
        for _ in range(2):
            chat.complete(turn(chat, asked, "r"))
    assert len(model.requests) == 6


def test_a_cut_stream_is_not_cached(cache: ResponseCache) -> None:
    model = ScriptedModel(["partial"], finish=False)
    chat, _ = service(model, [], cache=cache)
    asked = request(temperature=0, stream=True)
    with pytest.raises(StreamInterruptedError):  # a stream that never finished is no answer
        list(chat.stream(turn(chat, asked, "r")))
    model.finish = True
    list(chat.stream(turn(chat, asked, "r")))
    assert len(model.requests) == 2


def test_an_answer_continued_on_a_fallback_reads_as_one_and_is_counted_whole() -> None:
    from strata.inference import ModelUnavailableError, TextDelta, token_counter

    class CutAfterOne(ScriptedModel):
        def stream(self, request):
            self.requests.append(request)
            yield TextDelta("Kangaroos ")
            raise ModelUnavailableError("connection dropped", target=self.name)

    primary = CutAfterOne([], name="default")
    backup = ScriptedModel(["eat ", "grass."], name="backup")
    chat = ChatPipeline(retriever=RecordingRetriever([]), router=router_for(primary, backup), settings=Settings())
    asked = request(stream=True, stream_options={"include_usage": True})
    chunks = wire(chat.stream(turn(chat, asked, "r")))

    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Kangaroos eat grass."
    assert backup.requests[0].prefix == "Kangaroos "
    assert chunks[-2]["strata"]["target"] == "backup" and chunks[-2]["strata"]["failovers"] == 1
    assert chunks[-1]["usage"]["completion_tokens"] == token_counter(None).count(text)
