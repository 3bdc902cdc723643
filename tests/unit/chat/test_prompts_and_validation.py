"""The prompt and validation stages of the chat pipeline, through ``ChatPipeline`` with scripted
models: prompt versions, JSON answers, personal data, citations, loops and the relevance floor."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import combinations
from typing import Any

import boto3
import pytest
from moto import mock_aws

from strata.auth import Principal
from strata.chat import ChatCompletionRequest, ChatPipeline, RequestContext
from strata.config import Settings
from strata.inference import ChatProvider
from strata.prompts import PromptNotFoundError, PromptStore, PromptVariable, PromptVariableError
from strata.prompts.templates import BUILTIN_INSTRUCTIONS, NOT_IN_DOCUMENTS
from strata.retrieval import SearchHit
from strata.validation import JsonAnswerError
from strata_local.aws import create_tables
from tests.fakes import RecordingRetriever, ScriptedAnswers, ScriptedModel, hit, router_for

ACME = Principal(tenant="acme", key_id="k")
GLOBEX = Principal(tenant="globex", key_id="g")


@pytest.fixture
def prompts() -> Iterator[PromptStore]:
    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield PromptStore(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-prompts"))


def pipeline(
    model: ChatProvider, hits: list[SearchHit] | None = None, prompts: PromptStore | None = None, **settings: Any
) -> tuple[ChatPipeline, RecordingRetriever]:
    retriever = RecordingRetriever(hits if hits is not None else [hit("kangaroo", 0, 0.9)])
    chat = ChatPipeline(
        retriever=retriever,
        router=router_for(model, tokenizer="smollm2"),
        settings=Settings(**settings),
        prompts=prompts,
    )
    return chat, retriever


def ask(content: str = "What do kangaroos eat?", **fields: Any) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": content}], **fields})


def complete(chat: ChatPipeline, asked: ChatCompletionRequest, principal: Principal = ACME) -> dict[str, Any]:
    return json.loads(chat.complete(chat.start(asked, principal, RequestContext("r"))).model_dump_json())


def stream(chat: ChatPipeline, asked: ChatCompletionRequest, principal: Principal = ACME) -> list[dict[str, Any]]:
    return [json.loads(c.model_dump_json()) for c in chat.stream(chat.start(asked, principal, RequestContext("r")))]


def contents(chunks: list[dict[str, Any]]) -> list[str]:
    return [c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]]


# --- prompt versions ------------------------------------------------------------------------------


def test_without_a_stored_prompt_the_builtin_one_is_used_and_named(prompts: PromptStore) -> None:
    model = ScriptedModel(["Grass [1]."])
    chat, _ = pipeline(model, prompts=prompts)
    reply = complete(chat, ask())
    assert reply["strata"]["prompt"] == {"name": "builtin", "version": 0}
    assert model.requests[0].messages[0].content.startswith(BUILTIN_INSTRUCTIONS)


def test_the_tenants_default_prompt_at_production_is_the_default_and_a_label_move_rolls_back(
    prompts: PromptStore,
) -> None:
    prompts.create("acme", "default", "Answer like a pirate.", labels=["production"])
    prompts.create("acme", "default", "Answer like a poet.")
    model = ScriptedAnswers([["Arr."], ["Roses."], ["Arr again."]])
    chat, _ = pipeline(model, prompts=prompts)

    assert complete(chat, ask())["strata"]["prompt"] == {"name": "default", "version": 1}
    prompts.set_label("acme", "default", "production", 2)
    assert complete(chat, ask())["strata"]["prompt"] == {"name": "default", "version": 2}
    prompts.set_label("acme", "default", "production", 1)  # the rollback
    assert complete(chat, ask())["strata"]["prompt"] == {"name": "default", "version": 1}
    assert [r.messages[0].content.split("\n")[0] for r in model.requests] == [
        "Answer like a pirate.",
        "Answer like a poet.",
        "Answer like a pirate.",
    ]


def test_a_request_pinned_to_a_version_gets_exactly_that_text_with_its_variables(prompts: PromptStore) -> None:
    variables = [PromptVariable(name="product"), PromptVariable(name="tone", default="friendly")]
    prompts.create("acme", "support", "You support {{ product }}. Be {{ tone }}.", variables=variables)
    prompts.create(
        "acme", "support", "Version two about {{ product }}.", variables=variables[:1], labels=["production"]
    )
    model = ScriptedAnswers([["a"], ["b"], ["c"]])
    chat, _ = pipeline(model, prompts=prompts)

    pinned = complete(
        chat, ask(strata={"prompt": {"name": "support", "version": 1, "variables": {"product": "Strata"}}})
    )
    assert pinned["strata"]["prompt"] == {"name": "support", "version": 1}
    system = model.requests[0].messages[0].content
    assert system == "You support Strata. Be friendly."  # the sources are in the question's turn

    complete(chat, ask(strata={"prompt": {"name": "support", "variables": {"product": "Strata"}}}))
    assert model.requests[1].messages[0].content == "Version two about Strata."  # production

    with pytest.raises(PromptVariableError, match="product"):
        complete(chat, ask(strata={"prompt": {"name": "support", "version": 1}}))
    with pytest.raises(PromptVariableError, match="colour"):
        complete(chat, ask(strata={"prompt": {"name": "support", "variables": {"product": "x", "colour": "red"}}}))
    with pytest.raises(PromptVariableError, match="product"):  # the built-in prompt declares none
        complete(chat, ask(strata={"prompt": {"variables": {"product": "x"}}}))
    assert len(model.requests) == 2  # refused before the model was called


def test_a_tenant_never_sees_another_tenants_prompts(prompts: PromptStore) -> None:
    prompts.create("acme", "default", "Acme's secret instructions.", labels=["production"])
    prompts.create("acme", "support", "Acme support.")
    model = ScriptedAnswers([["a"], ["b"]])
    chat, _ = pipeline(model, prompts=prompts)

    assert complete(chat, ask(), GLOBEX)["strata"]["prompt"] == {"name": "builtin", "version": 0}
    assert "Acme" not in model.requests[0].messages[0].content
    with pytest.raises(PromptNotFoundError):
        complete(chat, ask(strata={"prompt": {"name": "support"}}), GLOBEX)


def test_version_and_label_together_are_refused() -> None:
    with pytest.raises(ValueError, match="not both"):
        ask(strata={"prompt": {"name": "support", "version": 1, "label": "production"}})


# --- JSON answers ---------------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"animal": {"type": "string"}, "legs": {"type": "integer"}},
    "required": ["animal", "legs"],
}
JSON_FORMAT = {"type": "json_schema", "json_schema": {"name": "animal", "schema": SCHEMA}}


def test_an_invalid_json_answer_gets_one_repair_round_then_is_sent_buffered() -> None:
    model = ScriptedAnswers([['{"animal": "kangaroo", "legs": "two"}'], ['{"animal": "kangaroo", "legs": 2}']])
    chat, _ = pipeline(model)
    reply = complete(chat, ask(response_format=JSON_FORMAT))

    assert json.loads(reply["choices"][0]["message"]["content"]) == {"animal": "kangaroo", "legs": 2}
    assert reply["strata"]["validation"]["response_format"] == "repaired"
    repair = model.requests[1].messages
    assert repair[-2].role == "assistant" and repair[-2].content == '{"animal": "kangaroo", "legs": "two"}'
    assert repair[-1].role == "user" and "$.legs" in repair[-1].content and "integer" in repair[-1].content
    assert "Schema:" in model.requests[0].messages[0].content  # the model was told the schema
    assert reply["usage"]["completion_tokens"] > 0


def test_an_invalid_json_answer_gets_one_repair_round_then_is_sent_streamed() -> None:
    model = ScriptedAnswers([["Sure! ", '{"animal": '], ['```json\n{"animal": "emu", "legs": 2}\n```']])
    chat, _ = pipeline(model)
    chunks = stream(chat, ask(stream=True, response_format=JSON_FORMAT))

    assert json.loads("".join(contents(chunks))) == {"animal": "emu", "legs": 2}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["strata"]["validation"]["response_format"] == "repaired"


def test_a_valid_json_answer_needs_no_repair() -> None:
    model = ScriptedAnswers([['{"animal": "wombat", "legs": 4}']])
    chat, _ = pipeline(model)
    chunks = stream(chat, ask(stream=True, response_format={"type": "json_object"}))
    assert json.loads("".join(contents(chunks))) == {"animal": "wombat", "legs": 4}
    assert chunks[-1]["strata"]["validation"]["response_format"] == "valid"
    assert len(model.requests) == 1


@pytest.mark.parametrize("streamed", [False, True])
def test_a_second_invalid_json_answer_is_a_clear_error(streamed: bool) -> None:
    model = ScriptedAnswers([["not json"], ['{"animal": "emu"}']])
    chat, _ = pipeline(model)
    asked = ask(stream=streamed, response_format=JSON_FORMAT)
    with pytest.raises(JsonAnswerError, match="after one repair attempt.*legs"):
        stream(chat, asked) if streamed else complete(chat, asked)
    assert len(model.requests) == 2


def test_a_response_format_with_a_broken_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        ask(response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}})


# --- personal data ---------------------------------------------------------------------------------

EMAIL, CARD, AWS_KEY = "jane.doe@example.com", "4111 1111 1111 1111", "AKIAIOSFODNN7EXAMPLE"
ANSWER = f"Write to {EMAIL}, pay with {CARD} and rotate {AWS_KEY} today."


def leaks(chunks: list[str]) -> list[str]:
    """The raw values found in any chunk or any run of consecutive chunks."""
    found = []
    for start in range(len(chunks)):
        for end in range(start + 1, len(chunks) + 1):
            joined = "".join(chunks[start:end])
            found += [value for value in (EMAIL, CARD, CARD.replace(" ", ""), AWS_KEY) if value in joined]
    return found


def test_no_split_of_the_answer_leaks_an_email_a_card_or_an_aws_key() -> None:
    # Every split into two and three chunks: the model may cut a value anywhere.
    splits = [[ANSWER[:i], ANSWER[i:]] for i in range(1, len(ANSWER))]
    splits += [[ANSWER[:i], ANSWER[i:j], ANSWER[j:]] for i, j in combinations(range(1, len(ANSWER)), 2) if j - i < 25]
    for tokens in splits:
        chat, _ = pipeline(ScriptedModel(tokens), hits=[])
        chunks = stream(chat, ask(stream=True))
        sent = contents(chunks)
        assert leaks(sent) == [], tokens
        assert (
            "".join(sent) == "Write to [email redacted], pay with [card redacted] and rotate [aws key redacted] today."
        )
        assert chunks[-1]["strata"]["validation"]["redacted"] == {"email": 1, "card": 1, "aws_key": 1}


def test_a_tenant_that_opts_out_gets_the_answer_as_written() -> None:
    chat, _ = pipeline(ScriptedModel([ANSWER]), hits=[])
    reply = complete(chat, ask(), Principal(tenant="acme", key_id="k", redact_pii=False))
    assert reply["choices"][0]["message"]["content"] == ANSWER
    assert reply["strata"]["validation"]["redacted"] == {}


def test_the_passages_shown_with_an_answer_are_redacted_as_the_answer_is() -> None:
    source = hit("kangaroo", 0, 0.9, text=f"Kangaroos eat grass. Keeper: {EMAIL}.")
    chat, _ = pipeline(ScriptedModel(["Grass [1]."]), hits=[source])
    (redacted,) = complete(chat, ask())["strata"]["citations"]
    (kept,) = complete(chat, ask(), Principal(tenant="acme", key_id="k", redact_pii=False))["strata"]["citations"]

    assert redacted["text"] == "Kangaroos eat grass. Keeper: [email redacted]."
    assert kept["text"] == source.text


# --- citations, loops, relevance and confidence ------------------------------------------------------


def test_markers_of_sources_not_given_are_removed_and_counted() -> None:
    chat, _ = pipeline(ScriptedModel(["Grass [1]", " and roots [4]."]))
    reply = complete(chat, ask())
    assert reply["choices"][0]["message"]["content"] == "Grass [1] and roots."
    assert reply["strata"]["validation"]["citations_removed"] == 1
    assert reply["strata"]["citations"][0]["referenced"] is True


def test_an_answer_that_loops_is_stopped_and_says_so() -> None:
    chat, _ = pipeline(ScriptedModel(["Kangaroos eat grass and leaves every day. "] * 40))
    reply = complete(chat, ask())
    assert reply["strata"]["validation"]["loop_stopped"] is True
    assert reply["choices"][0]["message"]["content"].count("Kangaroos eat grass") <= 2


def test_found_documents_below_the_relevance_floor_get_an_honest_answer_without_the_model() -> None:
    unrelated = [h.model_copy(update={"similarity": 0.05}) for h in (hit("tax", 0, 1.0), hit("tyres", 1, 0.7))]
    model = ScriptedModel(["An invented answer."])
    chat, _ = pipeline(model, hits=unrelated, retrieval_min_similarity=0.3)
    reply = complete(chat, ask("What is the boiling point of tungsten?"))

    assert reply["choices"][0]["message"]["content"] == NOT_IN_DOCUMENTS
    assert model.requests == []
    assert reply["strata"]["citations"] == [] and reply["strata"]["confidence"] is None
    assert reply["strata"]["context"]["sources_below_floor"] == 2
    assert reply["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_sources_below_the_floor_are_dropped_and_the_rest_used() -> None:
    found = [
        hit("kangaroo", 0, 1.0).model_copy(update={"similarity": 0.6}),
        hit("tax", 0, 0.5).model_copy(update={"similarity": 0.1}),
    ]
    chat, _ = pipeline(ScriptedModel(["Grass [1]."]), hits=found, retrieval_min_similarity=0.3)
    reply = complete(chat, ask())
    assert [c["document_id"] for c in reply["strata"]["citations"]] == ["kangaroo"]
    assert reply["strata"]["context"]["sources_below_floor"] == 1


def test_a_follow_up_question_is_searched_with_the_conversation() -> None:
    chat, retriever = pipeline(ScriptedModel(["The 17th century [1]."]))
    conversation = [
        {"role": "user", "content": "Who wrote Hamlet?"},
        {"role": "assistant", "content": "William Shakespeare wrote Hamlet [1]."},
        {"role": "user", "content": "In which century?"},
    ]
    complete(chat, ChatCompletionRequest.model_validate({"messages": conversation}))
    assert retriever.calls[0]["query"] == "Who wrote Hamlet? William Shakespeare wrote Hamlet. In which century?"


def test_the_confidence_is_higher_for_an_answer_its_sources_support() -> None:
    source = [hit("kangaroo", 0, 0.9, "The red kangaroo eats grass and shrubs in central Australia.")]
    supported, _ = pipeline(ScriptedModel(["Red kangaroos eat grass and shrubs [1]."]), hits=source)
    invented, _ = pipeline(ScriptedModel(["Kangaroos hunt fish in Brazilian rivers [1]."]), hits=source)
    high = complete(supported, ask())["strata"]["confidence"]
    low = complete(invented, ask())["strata"]["confidence"]
    assert 0 <= low < high <= 1


def test_an_unmarked_sentence_its_source_supports_is_cited_for_the_model() -> None:
    sources = [hit("wombat", 0, 0.9, "Wombats dig burrows."), hit("kangaroo", 1, 0.8, "Red kangaroos eat grass.")]
    chat, _ = pipeline(ScriptedModel(["Red kangaroos", " eat grass.", " Nice."]), hits=sources)
    reply = complete(chat, ask())
    assert reply["choices"][0]["message"]["content"] == "Red kangaroos eat grass [2]. Nice."
    assert reply["strata"]["validation"]["citations_added"] == 1
    assert [c["referenced"] for c in reply["strata"]["citations"]] == [False, True]


def test_a_json_request_with_nothing_relevant_is_still_answered_in_json() -> None:
    unrelated = [hit("tax", 0, 1.0).model_copy(update={"similarity": 0.05})]
    model = ScriptedAnswers([['{"animal": "none", "legs": 0}']])
    chat, _ = pipeline(model, hits=unrelated, retrieval_min_similarity=0.3)
    reply = complete(chat, ask(response_format=JSON_FORMAT))
    assert json.loads(reply["choices"][0]["message"]["content"]) == {"animal": "none", "legs": 0}
    assert reply["strata"]["context"]["sources_used"] == 0 and len(model.requests) == 1
