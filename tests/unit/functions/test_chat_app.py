"""The chat function over HTTP, with the SageMaker runtime client faked at the process edge."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import EndpointConnectionError
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
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["", "Grass", " [1]", None]
    assert chunks[-1]["strata"]["citations"][0]["referenced"] is True
    assert runtime.streams[0].closed


def test_an_endpoint_that_is_down_is_a_503_before_the_stream(client: TestClient, runtime: FakeSageMakerRuntime) -> None:
    runtime.error = EndpointConnectionError(endpoint_url="http://model:8080")
    response = client.post("/v1/chat/completions", json=QUESTION, headers=CONTEXT)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "model_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert "8080" not in response.text  # no internal addresses in answers


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
