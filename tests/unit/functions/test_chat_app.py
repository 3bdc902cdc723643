"""The chat function over HTTP, with the SageMaker runtime client faked at the process edge."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from fastapi.testclient import TestClient

from functions.chat.app import app
from strata.chat import ChatPipeline
from strata.config import Settings
from strata.inference import (
    CircuitBreakers,
    InferenceRouter,
    InMemoryBreakerStore,
    RetryPolicy,
    SageMakerChatProvider,
    parse_registry,
)
from strata.web import REQUEST_CONTEXT_HEADER, chat_pipeline
from tests.fakes import FakeSageMakerRuntime, RecordingRetriever, hit, model_error, sse_parts

CONTEXT = {REQUEST_CONTEXT_HEADER: json.dumps({"authorizer": {"tenant": "acme", "key_id": "k", "scopes": "chat"}})}
QUESTION = {"model": "default", "stream": True, "messages": [{"role": "user", "content": "What do kangaroos eat?"}]}


# SageMaker's refusal of an inference component scaled to zero, while a copy starts.
NO_CAPACITY = ClientError(
    {
        "Error": {"Code": "ValidationError", "Message": "Inference Component has no capacity to process this request."},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    },
    "InvokeEndpointWithResponseStream",
)


def chunk(content: str | None = None, finish: str | None = None) -> str:
    delta = {"content": content} if content is not None else {}
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


@pytest.fixture
def runtime() -> FakeSageMakerRuntime:
    return FakeSageMakerRuntime(sse_parts(chunk("Grass"), chunk(" [1]"), chunk(finish="stop"), "[DONE]"))


@pytest.fixture
def client(runtime: FakeSageMakerRuntime) -> Iterator[TestClient]:
    registry = parse_registry({"models": {"default": {"provider": "sagemaker", "endpoint": "strata-chat"}}}, source="t")
    router = InferenceRouter(
        registry,
        {"default": SageMakerChatProvider("default", client=runtime, endpoint="strata-chat")},
        CircuitBreakers(InMemoryBreakerStore()),
        retry=RetryPolicy(attempts=1),
    )
    service = ChatPipeline(retriever=RecordingRetriever([hit("kangaroo", 0, 0.9)]), router=router, settings=Settings())
    app.dependency_overrides[chat_pipeline] = lambda: service
    # raise_server_exceptions: an error that escapes the app (instead of being answered) fails the test.
    with TestClient(app, raise_server_exceptions=True) as test_client:
        yield test_client
    app.dependency_overrides.clear()


def events(body: str) -> list[str]:
    return [line.removeprefix("data: ") for line in body.splitlines() if line.startswith("data: ")]


def test_stream_sends_each_chunk_then_citations_then_done(client: TestClient, runtime: FakeSageMakerRuntime) -> None:
    response = client.post("/v1/chat/completions", json=QUESTION, headers=CONTEXT)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    data = events(response.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert contents[0] == "" and contents[-1] is None  # the role first, the finish chunk last
    assert "".join(contents[1:-1]) == "Grass [1]"
    assert chunks[-1]["strata"]["citations"][0]["referenced"] is True
    assert runtime.streams[0].closed


def test_an_endpoint_that_is_down_is_a_503_before_the_stream(client: TestClient, runtime: FakeSageMakerRuntime) -> None:
    runtime.error = EndpointConnectionError(endpoint_url="http://model:8080")
    response = client.post("/v1/chat/completions", json=QUESTION, headers=CONTEXT)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert "8080" not in response.text  # no internal addresses in answers


def test_a_model_scaled_to_zero_is_a_503_that_says_it_is_waking(
    client: TestClient, runtime: FakeSageMakerRuntime
) -> None:
    runtime.error = NO_CAPACITY
    response = client.post("/v1/chat/completions", json=QUESTION, headers=CONTEXT)

    assert response.status_code == 503
    body = response.json()
    assert body["error"]["code"] == "model_waking"
    assert body["strata"]["waking"] is True
    assert int(response.headers["retry-after"]) == body["strata"]["retry_after_s"] >= 30
    assert len(runtime.calls) == 1  # no retry waits for an instance to start


def test_a_request_the_model_refuses_is_a_400(client: TestClient, runtime: FakeSageMakerRuntime) -> None:
    runtime.error = model_error(400, "prompt is longer than the context window")
    response = client.post("/v1/chat/completions", json=QUESTION, headers=CONTEXT)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "context window" in response.json()["error"]["message"]


def test_a_model_error_inside_the_stream_ends_it_with_an_error_event(
    client: TestClient, runtime: FakeSageMakerRuntime
) -> None:
    runtime.parts = sse_parts(chunk("Gra"), json.dumps({"error": {"message": "CUDA out of memory"}}), "[DONE]")
    response = client.post("/v1/chat/completions", json=QUESTION, headers=CONTEXT)

    data = events(response.text)
    assert json.loads(data[1])["choices"][0]["delta"]["content"] == "Gra"
    error = json.loads(data[-1])["error"]
    assert error["code"] == "model_unavailable"
    assert "[DONE]" not in data and not any("strata" in d for d in data), "a broken answer is never a finished one"


def test_unknown_model_missing_principal_and_bad_body_are_openai_errors(client: TestClient) -> None:
    unknown = client.post("/v1/chat/completions", json={**QUESTION, "model": "gpt-9"}, headers=CONTEXT)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "model_not_found")

    anonymous = client.post("/v1/chat/completions", json=QUESTION)
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "invalid_api_key")

    empty = client.post("/v1/chat/completions", json={**QUESTION, "messages": []}, headers=CONTEXT)
    assert empty.status_code == 400
    assert empty.json()["error"]["param"] == "messages"


@pytest.mark.parametrize(
    ("change", "param", "words"),
    [
        ({"stream": "yes"}, "stream", "valid boolean"),
        ({"temperature": "0.5"}, "temperature", "valid number"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
            "messages.0.content.0.text",
            "string",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages.0.content.0.type",
            "'text'",
        ),
        ({"messages": [{"role": "user", "content": "\ud800"}]}, "messages.0.content", "lone surrogate"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role", "Input should be"),
        ({"n": 2}, "n", "not supported"),
        ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools", "tool calling is not supported"),
        ({"logprobs": True}, "logprobs", "not supported"),
        ({"response_format": {"type": "json_schema"}}, "response_format", "json_schema is required"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 1}}}},
            "response_format.json_schema.schema",
            "not a valid JSON Schema",
        ),
        ({"strata": {"prompt": {"name": "Bad Name"}}}, "strata.prompt.name", "pattern"),
        ({"frequency_penalty": 0.5}, "frequency_penalty", "not supported"),
        ({"best_of": 2}, "best_of", "Extra inputs are not permitted"),
    ],
)
def test_a_parameter_that_is_wrong_or_unsupported_is_a_400_naming_it(
    client: TestClient, runtime: FakeSageMakerRuntime, change: dict, param: str, words: str
) -> None:
    body = json.dumps({**QUESTION, **change})  # ASCII: a lone surrogate travels as its \\u escape
    response = client.post(
        "/v1/chat/completions", content=body, headers={**CONTEXT, "content-type": "application/json"}
    )

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)
    assert words in error["message"]
    assert runtime.streams == []  # refused before any model call


def test_standard_parameters_asking_for_what_is_supported_are_accepted(client: TestClient) -> None:
    accepted = {
        "n": 1,
        "tools": [],
        "tool_choice": "none",
        "logprobs": False,
        "presence_penalty": 0,
        "user": "u-1",
        "response_format": {"type": "text"},
        "service_tier": "auto",
        "metadata": {"app": "test"},
        "store": False,
        "stop": ["\n\n"],
        "seed": 7,
        "temperature": 1,
        "top_p": 0.9,
        "max_completion_tokens": 16,
    }
    response = client.post("/v1/chat/completions", json={**QUESTION, **accepted}, headers=CONTEXT)
    assert response.status_code == 200, response.text


def test_malformed_json_is_a_400_and_the_connection_stays_usable(client: TestClient) -> None:
    broken = client.post(
        "/v1/chat/completions", content=b'{"messages": [', headers={**CONTEXT, "content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["message"].startswith("We could not parse the JSON body")
    assert client.post("/v1/chat/completions", json=QUESTION, headers=CONTEXT).status_code == 200


def test_a_body_over_the_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    big = b'{"messages": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    declared = client.post("/v1/chat/completions", content=big, headers={**CONTEXT, "content-type": "application/json"})
    assert (declared.status_code, declared.json()["error"]["code"]) == (413, "request_too_large")

    def chunked():  # no Content-Length: counted as it arrives
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = client.post(
        "/v1/chat/completions", content=chunked(), headers={**CONTEXT, "content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_headers_over_the_limit_are_a_431(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json=QUESTION, headers={**CONTEXT, "x-padding": "y" * 20_000})
    assert (response.status_code, response.json()["error"]["code"]) == (431, "request_header_fields_too_large")


def sse_events(body: str) -> list[tuple[str, str]]:
    """(event name, data) of each server-sent event."""
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields.get("event", "message"), fields["data"]))
    return events


def test_with_progress_the_stream_opens_once_admitted_and_says_what_it_waits_for(client: TestClient) -> None:
    response = client.post("/v1/chat/completions", json={**QUESTION, "strata": {"progress": True}}, headers=CONTEXT)

    events = sse_events(response.text)
    assert events[:2] == [("progress", '{"stage":"retrieving"}'), ("progress", '{"stage":"generating","sources":1}')]
    assert all(name == "message" for name, _ in events[2:])
    assert events[-1] == ("message", "[DONE]")
    assert json.loads(events[-2][1])["strata"]["citations"][0]["text"]
    plain = client.post("/v1/chat/completions", json=QUESTION, headers=CONTEXT).text
    assert "event:" not in plain, "an OpenAI client is sent unnamed events only"


def test_with_progress_a_model_that_is_down_ends_the_opened_stream_with_its_error(
    client: TestClient, runtime: FakeSageMakerRuntime
) -> None:
    runtime.error = EndpointConnectionError(endpoint_url="http://model:8080")
    response = client.post("/v1/chat/completions", json={**QUESTION, "strata": {"progress": True}}, headers=CONTEXT)

    assert response.status_code == 200
    events = sse_events(response.text)
    assert [name for name, _ in events] == ["progress", "progress", "message"]
    assert json.loads(events[-1][1])["error"]["code"] == "model_unavailable"


def test_with_progress_a_waking_model_says_so_in_the_stream_with_when_to_retry(
    client: TestClient, runtime: FakeSageMakerRuntime
) -> None:
    runtime.error = NO_CAPACITY
    response = client.post("/v1/chat/completions", json={**QUESTION, "strata": {"progress": True}}, headers=CONTEXT)

    body = json.loads(sse_events(response.text)[-1][1])
    assert body["error"]["code"] == "model_waking"
    assert body["strata"]["waking"] is True and body["strata"]["retry_after_s"] >= 30
