from __future__ import annotations

from typing import Any

import pytest

from strata.auth import Principal
from strata.chat import ChatCompletionRequest, ChatService
from strata.config import Settings
from strata.inference import UnknownModelError
from strata.retrieval import SearchHit, SearchMode
from tests.fakes import RecordingRetriever, ScriptedModel, hit


def service(model: ScriptedModel, hits: list[SearchHit], **settings: Any) -> tuple[ChatService, RecordingRetriever]:
    retriever = RecordingRetriever(hits)
    return ChatService(retriever=retriever, models={"default": model}, settings=Settings(**settings)), retriever


def request(**fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": "What do kangaroos eat?"}], **fields}
    )


PRINCIPAL = Principal(tenant="acme", key_id="k")


def test_stream_forwards_each_token_and_the_finish_chunk_carries_citations() -> None:
    model = ScriptedModel(["Grass", " [1]", "."])
    chat, retriever = service(model, [hit("kangaroo", 0, 0.9), hit("wombat", 2, 0.4)])
    prepared = chat.prepare(request(stream=True), PRINCIPAL, "req1")

    chunks = list(chat.stream(request(stream=True), prepared))

    assert [c["choices"][0]["delta"].get("content") for c in chunks[1:4]] == ["Grass", " [1]", "."]
    assert all(c["id"] == "chatcmpl-req1" and c["model"] == "default" for c in chunks)
    assert "strata" not in chunks[0]
    citations = chunks[-1]["strata"]["citations"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert [(c["source_key"], c["referenced"]) for c in citations] == [
        ("tenants/acme/kangaroo.txt", True),
        ("tenants/acme/wombat.txt", False),
    ]
    assert retriever.calls[0]["tenant"] == "acme"


def test_stream_without_a_finish_reason_still_ends_with_citations() -> None:
    chat, _ = service(ScriptedModel(["Hi"], finish=False), [hit("kangaroo", 0, 0.9)])
    chunks = list(chat.stream(request(stream=True), chat.prepare(request(stream=True), PRINCIPAL, "r")))
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["strata"]["citations"][0]["document_id"] == "kangaroo"


def test_prompt_numbers_sources_in_rank_order_within_the_context_budget() -> None:
    long_text = "x" * 900
    model = ScriptedModel(["ok"])
    chat, _ = service(model, [hit(f"d{i}", i, 1 - i / 10, long_text) for i in range(6)], max_context_chars=2000)
    prepared = chat.prepare(request(), PRINCIPAL, "r")
    chat.complete(request(), prepared)

    system = model.bodies[0]["messages"][0]
    assert system["role"] == "system"
    assert "[1] D0" in system["content"] and "[2] D1" in system["content"]
    assert "[3]" not in system["content"]  # the third source would overflow the budget
    assert len(prepared.prompt.sources) == 2
    assert model.bodies[0]["messages"][1] == {"role": "user", "content": "What do kangaroos eat?"}


def test_retrieval_options_from_the_strata_extension_reach_the_retriever() -> None:
    chat, retriever = service(ScriptedModel(["ok"]), [hit("a", 0, 1.0)])
    chat.prepare(request(strata={"retrieval": {"k": 1, "mode": "keyword", "document_ids": ["a"]}}), PRINCIPAL, "r")
    assert retriever.calls[0] == {
        "tenant": "acme",
        "query": "What do kangaroos eat?",
        "k": 1,
        "mode": SearchMode.KEYWORD,
        "document_ids": ["a"],
    }


def test_retrieval_can_be_switched_off() -> None:
    chat, retriever = service(ScriptedModel(["ok"]), [hit("a", 0, 1.0)])
    prepared = chat.prepare(request(strata={"retrieval": {"enabled": False}}), PRINCIPAL, "r")
    assert retriever.calls == [] and prepared.prompt.sources == []


def test_max_tokens_is_capped_by_the_settings() -> None:
    model = ScriptedModel(["ok"])
    chat, _ = service(model, [], max_output_tokens=64)
    chat.complete(request(max_tokens=4000), chat.prepare(request(max_tokens=4000), PRINCIPAL, "r"))
    assert model.bodies[0]["max_tokens"] == 64


def test_buffered_completion_keeps_usage_and_adds_the_extension() -> None:
    chat, _ = service(ScriptedModel(["Grass [1]"]), [hit("kangaroo", 0, 0.9)])
    reply = chat.complete(request(), chat.prepare(request(), PRINCIPAL, "r9"))
    assert reply["id"] == "chatcmpl-r9" and reply["object"] == "chat.completion"
    assert reply["usage"] == {"completion_tokens": 2}
    assert reply["strata"]["citations"][0]["referenced"] is True


def test_unknown_model_alias_is_refused() -> None:
    chat, _ = service(ScriptedModel([]), [])
    with pytest.raises(UnknownModelError):
        chat.model_for("gpt-4")
