"""Calls to SageMaker endpoints through boto3's ``sagemaker-runtime`` client.

Generation speaks the OpenAI chat-completions schema (as AWS's vLLM and LMI containers do) and
streams SSE inside the event-stream payload parts; embeddings speak the TEI shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from strata.inference.exceptions import InferenceError, ModelRequestError, ModelUnavailableError
from strata.inference.sse import iter_sse_json

JSON = "application/json"


class SageMakerChatModel:
    """A chat model behind a SageMaker endpoint. Takes a ``sagemaker-runtime`` client."""

    def __init__(self, client: Any, endpoint_name: str) -> None:
        self._client = client
        self.endpoint_name = endpoint_name

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType=JSON,
                Accept=JSON,
                Body=json.dumps({**body, "stream": False}),
            )
            return json.loads(response["Body"].read())
        except (ClientError, BotoCoreError) as error:
            raise _endpoint_error(self.endpoint_name, error) from error

    def stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Chat-completion chunks as the endpoint produces them.

        The call is made on the first ``next()``, so a caller that pulls one chunk before sending
        anything turns an unreachable or refusing endpoint into an HTTP error, not a broken stream.
        """
        try:
            response = self._client.invoke_endpoint_with_response_stream(
                EndpointName=self.endpoint_name,
                ContentType=JSON,
                Accept="text/event-stream",
                Body=json.dumps({**body, "stream": True}),
            )
        except (ClientError, BotoCoreError) as error:
            raise _endpoint_error(self.endpoint_name, error) from error
        event_stream = response["Body"]
        try:
            for chunk in iter_sse_json(_payload_parts(event_stream)):
                if "error" in chunk:  # vLLM and the local server report failures inside the stream
                    raise ModelUnavailableError(f"model stream error: {chunk['error'].get('message', chunk['error'])}")
                yield chunk
        except BotoCoreError as error:
            raise ModelUnavailableError(f"chat endpoint {self.endpoint_name!r} stream broke: {error}") from error
        finally:
            event_stream.close()  # a client that left stops the upstream stream too


def _endpoint_error(endpoint_name: str, error: Exception) -> InferenceError:
    """A request the model refused (a 4xx from the container) is the caller's error, not an outage."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        original = int(error.response.get("OriginalStatusCode") or 0)
        if details.get("Code") == "ModelError" and 400 <= original < 500:
            message = error.response.get("OriginalMessage") or details.get("Message") or str(error)
            return ModelRequestError(f"the model refused the request: {message}")
    return ModelUnavailableError(f"chat endpoint {endpoint_name!r} is unavailable")


def _payload_parts(event_stream: Any) -> Iterator[bytes]:
    for event in event_stream:
        if "PayloadPart" in event:
            yield event["PayloadPart"]["Bytes"]
        elif "ModelStreamError" in event:
            raise ModelUnavailableError(f"model stream error: {event['ModelStreamError'].get('Message')}")
        elif "InternalStreamFailure" in event:
            raise ModelUnavailableError("internal stream failure")


class SageMakerEmbedder:
    """Text embeddings from a TEI-shaped SageMaker endpoint, in batches."""

    def __init__(self, client: Any, endpoint_name: str, *, batch_size: int = 32) -> None:
        self._client = client
        self.endpoint_name = endpoint_name
        self._batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            vectors.extend(self._embed_batch(list(texts[start : start + self._batch_size])))
        return vectors

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        try:
            response = self._client.invoke_endpoint(
                EndpointName=self.endpoint_name,
                ContentType=JSON,
                Accept=JSON,
                Body=json.dumps({"inputs": texts, "normalize": True, "truncate": True}),
            )
        except (ClientError, BotoCoreError) as error:
            raise _endpoint_error(self.endpoint_name, error) from error
        vectors = json.loads(response["Body"].read())
        if len(vectors) != len(texts):
            raise ModelUnavailableError(f"embedding endpoint returned {len(vectors)} vectors for {len(texts)} texts")
        return vectors
