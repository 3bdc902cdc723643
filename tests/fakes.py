"""Fakes of the process edges (the model endpoint, retrieval), shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strata.retrieval import SearchHit


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


class ScriptedModel:
    """The model endpoint's edge: replays chat-completion chunks."""

    def __init__(self, tokens: list[str], *, finish: bool = True) -> None:
        self.tokens = tokens
        self.finish = finish
        self.bodies: list[dict[str, Any]] = []

    def stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.bodies.append(body)
        yield {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
        for token in self.tokens:
            yield {"choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]}
        if self.finish:
            yield {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        self.bodies.append(body)
        return {
            "id": "upstream",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "".join(self.tokens)}, "finish_reason": "stop"}
            ],
            "usage": {"completion_tokens": 2},
        }


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

    def invoke_endpoint_with_response_stream(self, **_: Any) -> dict[str, Any]:
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
