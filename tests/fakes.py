"""Fakes of the process edges (the model endpoint, retrieval), shared by the unit tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from strata.inference import (
    ChatEvent,
    ChatProvider,
    ChatRequest,
    CircuitBreakers,
    Completion,
    Finish,
    InferenceRouter,
    InMemoryBreakerStore,
    TextDelta,
    Usage,
    parse_registry,
)
from strata.retrieval import SearchHit
from strata_local.aws import serialize_dynamodb


def hit(document: str, chunk: int, score: float, text: str = "Kangaroos eat grass.") -> SearchHit:
    return SearchHit(
        tenant="acme",
        document_id=document,
        chunk_index=chunk,
        text=text,
        source_key=f"tenants/acme/{document}.txt",
        title=document.title(),
        page=None,
        char_start=0,
        char_end=len(text),
        score=score,
    )


class RecordingRetriever:
    def __init__(self, hits: list[SearchHit]) -> None:
        self.hits = hits
        self.calls: list[dict[str, Any]] = []

    def search(self, **kwargs: Any) -> list[SearchHit]:
        self.calls.append(kwargs)
        return self.hits[: kwargs["k"]]


class ScriptedModel(ChatProvider):
    """A model target at the provider edge: replays its tokens as the typed stream."""

    def __init__(self, tokens: list[str], *, finish: bool = True, name: str = "default") -> None:
        super().__init__(name)
        self.tokens = tokens
        self.finish = finish
        self.requests: list[ChatRequest] = []

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        self.requests.append(request)
        for token in self.tokens:
            yield TextDelta(token)
        yield Usage(prompt_tokens=11, completion_tokens=len(self.tokens))
        if self.finish:
            yield Finish("stop")

    def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        return Completion("".join(self.tokens), "stop", Usage(11, len(self.tokens)), self.name)


class ScriptedAnswers(ChatProvider):
    """A model target that gives the next of its answers (token lists) on each call."""

    def __init__(self, answers: list[list[str]], *, name: str = "default") -> None:
        super().__init__(name)
        self.answers = answers
        self.requests: list[ChatRequest] = []

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        tokens = self.answers[len(self.requests)]
        self.requests.append(request)
        yield from (TextDelta(token) for token in tokens)
        yield Usage(prompt_tokens=11, completion_tokens=len(tokens))
        yield Finish("stop")

    def complete(self, request: ChatRequest) -> Completion:
        tokens = self.answers[len(self.requests)]
        self.requests.append(request)
        return Completion("".join(tokens), "stop", Usage(11, len(tokens)), self.name)


def router_for(*providers: ChatProvider, **target: Any) -> InferenceRouter:
    """A router whose aliases are the providers' names (the first falls back to the others)."""
    names = [provider.name for provider in providers]
    models = {
        name: {
            "provider": "sagemaker",
            "endpoint": f"{name}-endpoint",
            **target,
            "fallbacks": names[1:] if i == 0 else [],
        }
        for i, name in enumerate(names)
    }
    registry = parse_registry({"models": models}, source="test")
    return InferenceRouter(
        registry,
        {provider.name: provider for provider in providers},
        CircuitBreakers(InMemoryBreakerStore()),
        sleep=lambda _: None,
    )


class FakeEventStream:
    """What botocore returns as ``Body`` of a response stream: iterable events, closable."""

    def __init__(self, parts: list[bytes]) -> None:
        self.parts = parts
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for part in self.parts:
            yield {"PayloadPart": {"Bytes": part}}

    def close(self) -> None:
        self.closed = True


class FakeSageMakerRuntime:
    """A ``sagemaker-runtime`` client at the process edge: answers with SSE parts or raises."""

    def __init__(self, parts: list[bytes] | None = None, error: Exception | None = None) -> None:
        self.parts = parts or []
        self.error = error
        self.streams: list[FakeEventStream] = []
        self.calls: list[dict[str, Any]] = []

    def invoke_endpoint_with_response_stream(self, **call: Any) -> dict[str, Any]:
        self.calls.append(call)
        if self.error is not None:
            raise self.error
        self.streams.append(FakeEventStream(self.parts))
        return {"Body": self.streams[-1]}


def sse_parts(*payloads: str) -> list[bytes]:
    return [f"data: {payload}\n\n".encode() for payload in payloads]


def model_error(original_status: int, message: str) -> Exception:
    """The ClientError boto3 raises when the container answers ``original_status``."""
    from botocore.exceptions import ClientError

    response = {
        "Error": {"Code": "ModelError", "Message": message},
        "OriginalStatusCode": original_status,
        "OriginalMessage": message,
        "ResponseMetadata": {"HTTPStatusCode": 424},
    }
    return ClientError(response, "InvokeEndpointWithResponseStream")


@contextlib.contextmanager
def serialized_moto_dynamodb() -> Iterator[None]:
    """moto's in-process DynamoDB, one request at a time (see ``serialize_dynamodb``), so that a
    concurrency test checks our conditional writes and not moto."""
    undo = serialize_dynamodb()
    try:
        yield
    finally:
        undo()
