"""SageMaker real-time endpoints through boto3's ``sagemaker-runtime`` client.

Generation speaks the OpenAI chat-completions schema (as AWS's vLLM and LMI containers do) and
streams SSE inside the event-stream payload parts; embeddings speak the TEI shape. An endpoint
that hosts inference components is called with the component's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.eventstream import ParserError as EventStreamParserError
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError
from urllib3.exceptions import HTTPError as URLLib3HTTPError
from urllib3.exceptions import TimeoutError as URLLib3TimeoutError

from strata.inference.base import (
    ChatProvider,
    EmbeddingProvider,
    completion_from_openai,
    events_from_openai_chunk,
    openai_body,
)
from strata.inference.exceptions import (
    InferenceError,
    ModelRequestError,
    ModelTimeoutError,
    ModelUnavailableError,
    ModelWakingError,
)
from strata.inference.sse import iter_sse_json
from strata.inference.types import ChatEvent, ChatRequest, Completion

JSON = "application/json"


class SageMakerChatProvider(ChatProvider):
    """A chat model behind a SageMaker endpoint (optionally one inference component of it)."""

    def __init__(
        self,
        name: str,
        *,
        client: Any,
        endpoint: str,
        inference_component: str | None = None,
        parameters: dict[str, Any] | None = None,
        buffered_client: Any = None,
        wake_retry_after_s: float = 60.0,
    ) -> None:
        super().__init__(name)
        self._wake_retry_after_s = wake_retry_after_s
        self._client = client
        # Buffered calls may use a client with a longer read timeout (the answer comes whole).
        self._buffered_client = buffered_client or client
        self.endpoint = endpoint
        self._target_args = {"EndpointName": endpoint}
        if inference_component:
            self._target_args["InferenceComponentName"] = inference_component
        self._parameters = parameters or {}

    def complete(self, request: ChatRequest) -> Completion:
        try:
            response = self._buffered_client.invoke_endpoint(
                **self._target_args,
                ContentType=JSON,
                Accept=JSON,
                Body=json.dumps(openai_body(request, stream=False, **self._parameters)),
            )
            reply = json.loads(response["Body"].read())
        except (ClientError, BotoCoreError) as error:
            raise endpoint_error(
                self.name, self.endpoint, error, wake_retry_after_s=self._wake_retry_after_s
            ) from error
        return completion_from_openai(reply, self.name)

    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        try:
            response = self._client.invoke_endpoint_with_response_stream(
                **self._target_args,
                ContentType=JSON,
                Accept="text/event-stream",
                Body=json.dumps(openai_body(request, stream=True, **self._parameters)),
            )
        except (ClientError, BotoCoreError) as error:
            raise endpoint_error(
                self.name, self.endpoint, error, wake_retry_after_s=self._wake_retry_after_s
            ) from error
        event_stream = response["Body"]
        try:
            for chunk in iter_sse_json(self._payload_parts(event_stream)):
                if "error" in chunk:  # vLLM and the local server report failures inside the stream
                    message = chunk["error"].get("message", chunk["error"])
                    raise ModelUnavailableError(f"model stream error: {message}", target=self.name)
                yield from events_from_openai_chunk(chunk)
        except (URLLib3TimeoutError, ReadTimeoutError) as error:  # botocore leaves mid-stream reads to urllib3
            raise ModelTimeoutError(f"chat endpoint {self.endpoint!r} stalled mid-stream", target=self.name) from error
        except (BotoCoreError, ClientError, URLLib3HTTPError, EventStreamParserError) as error:
            raise ModelUnavailableError(
                f"chat endpoint {self.endpoint!r} stream broke: {error}", target=self.name
            ) from error
        except (ValueError, UnicodeDecodeError) as error:  # a malformed chunk
            raise ModelUnavailableError(
                f"chat endpoint {self.endpoint!r} sent a malformed chunk", target=self.name
            ) from error
        finally:
            event_stream.close()  # a client that left stops the upstream stream too

    def _endpoint_error(self, error: Exception) -> InferenceError:
        return endpoint_error(self.name, self.endpoint, error, wake_retry_after_s=self._wake_retry_after_s)

    def _payload_parts(self, event_stream: Any) -> Iterator[bytes]:
        for event in event_stream:
            if "PayloadPart" in event:
                yield event["PayloadPart"]["Bytes"]
            elif "ModelStreamError" in event:
                message = event["ModelStreamError"].get("Message")
                raise ModelUnavailableError(f"model stream error: {message}", target=self.name)
            elif "InternalStreamFailure" in event:
                raise ModelUnavailableError("internal stream failure", target=self.name)


def endpoint_error(
    target: str, endpoint: str, error: Exception, *, kind: str = "chat", wake_retry_after_s: float = 60.0
) -> InferenceError:
    """Classified once: a 4xx from the container is the caller's error, a timeout is a timeout,
    a throttle carries its ``Retry-After``, an inference component scaled to zero is waking,
    anything else is an outage of ``endpoint``."""
    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        return ModelTimeoutError(f"{kind} endpoint {endpoint!r} timed out", target=target)
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        original = int(error.response.get("OriginalStatusCode") or 0)
        if details.get("Code") == "ModelError" and 400 <= original < 500 and original != 429:
            message = error.response.get("OriginalMessage") or details.get("Message") or str(error)
            return ModelRequestError(f"the model refused the request: {message}", target=target)
        if details.get("Code") == "ValidationError" and is_no_capacity(details.get("Message")):
            return ModelWakingError(
                f"{kind} endpoint {endpoint!r} is scaled to zero and starting",
                target=target,
                retry_after=wake_retry_after_s,
            )
        if details.get("Code") == "ValidationError":
            return ModelRequestError(
                f"{kind} endpoint {endpoint!r} refused the request: {details.get('Message')}", target=target
            )
        headers = error.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        return ModelUnavailableError(
            f"{kind} endpoint {endpoint!r} is unavailable ({details.get('Code') or 'error'})",
            target=target,
            retry_after=_seconds(headers.get("retry-after")),
        )
    return ModelUnavailableError(f"{kind} endpoint {endpoint!r} is unreachable", target=target)


def is_no_capacity(message: str | None) -> bool:
    """SageMaker's refusal of a call to an inference component that has no copy ("Inference
    Component has no capacity to process this request. ApplicationAutoScaling may be
    in-progress ..."): the wake alarm is already adding one."""
    return "no capacity" in (message or "").lower()


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class SageMakerEmbedder(EmbeddingProvider):
    """Text embeddings from a TEI-shaped SageMaker endpoint, in batches."""

    def __init__(self, client: Any, endpoint_name: str, *, batch_size: int = 32) -> None:
        self._client = client
        self.name = self.endpoint_name = endpoint_name
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
            vectors = json.loads(response["Body"].read())
        except (ClientError, BotoCoreError) as error:
            raise endpoint_error(self.name, self.endpoint_name, error, kind="embedding") from error
        if len(vectors) != len(texts):
            raise ModelUnavailableError(
                f"embedding endpoint {self.endpoint_name!r} returned {len(vectors)} vectors for {len(texts)} texts",
                target=self.endpoint_name,
            )
        return vectors
