"""The SageMaker runtime API in front of the container, so boto3's ``sagemaker-runtime``
client works unchanged through ``endpoint_url``.

What the real service does, and this module mirrors (botocore's service model
``sagemaker-runtime/2017-05-13``):

- ``POST /endpoints/{EndpointName}/invocations`` (``InvokeEndpoint``): the container's reply,
  buffered; its ``Content-Type`` becomes the ``ContentType`` boto3 returns.
- ``POST /endpoints/{EndpointName}/invocations-response-stream``
  (``InvokeEndpointWithResponseStream``): each chunk the container writes is wrapped in a
  ``PayloadPart`` event-stream message; the container's content type travels in
  ``X-Amzn-SageMaker-Content-Type`` and ``Accept`` arrives as ``X-Amzn-SageMaker-Accept``.
- Errors are JSON ``{"message": ...}`` with the error code in ``x-amzn-ErrorType``, which
  botocore's rest-json parser turns into ``ClientError.response["Error"]["Code"]``.
  A container that answers 4xx/5xx surfaces as ``ModelError`` (HTTP 424) carrying
  ``OriginalStatusCode`` and ``OriginalMessage``, as SageMaker reports it; a container that
  is overloaded or shutting down (503) surfaces as ``ServiceUnavailable`` (HTTP 503, with its
  ``Retry-After``), which boto3 and Strata's router treat as "retry / go elsewhere", not as
  the caller's fault.
- A chat model scaled to zero (``ServerConfig.scale_to_zero_after_s``) is refused as SageMaker
  refuses a call to an inference component with no copy: HTTP 400 ``ValidationError``, "Inference
  Component has no capacity ...", until its wake is over (``model_endpoint.scale_to_zero``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.requests import Request

from model_endpoint import eventstream
from model_endpoint.config import ServerConfig
from model_endpoint.invocations import Task, invoke
from model_endpoint.responses import ClosingStreamingResponse, close_response
from model_endpoint.scale_to_zero import NO_CAPACITY_MESSAGE
from model_endpoint.state import ServerState

__all__ = ("invoke_endpoint", "invoke_endpoint_with_response_stream", "resolve_endpoint")

logger = logging.getLogger(__name__)

ERROR_TYPE_HEADER = "x-amzn-ErrorType"
REQUEST_ID_HEADER = "x-amzn-RequestId"
VARIANT_HEADER = "x-Amzn-Invoked-Production-Variant"
STREAM_CONTENT_TYPE_HEADER = "X-Amzn-SageMaker-Content-Type"
TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"
INFERENCE_COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"


class EndpointNotFoundError(LookupError):
    pass


def resolve_endpoint(config: ServerConfig, endpoint_name: str, inference_component: str | None = None) -> Task:
    """Which model an endpoint (or inference component) name stands for.

    Production may host both models as inference components of one endpoint; a component
    name, when sent, therefore wins over the endpoint name.
    """
    names: dict[str, Task] = {config.chat_endpoint: "chat", config.embedding_endpoint: "embeddings"}
    name = inference_component or endpoint_name
    if name in names:
        return names[name]
    what = "Inference component" if inference_component else "Endpoint"
    known = ", ".join(sorted(names))
    raise EndpointNotFoundError(f"{what} {name} not found. This server answers: {known}.")


def _request_id() -> str:
    return str(uuid.uuid4())


def runtime_error(
    status_code: int,
    error_type: str,
    message: str,
    request_id: str,
    *,
    headers: Mapping[str, str] | None = None,
    **fields: object,
) -> JSONResponse:
    return JSONResponse(
        {"message": message, **fields},
        status_code=status_code,
        headers={**(headers or {}), ERROR_TYPE_HEADER: error_type, REQUEST_ID_HEADER: request_id},
    )


async def read_body(response: Response) -> bytes:
    """The whole body of a (possibly streaming) response."""
    if not isinstance(response, StreamingResponse):
        return bytes(response.body)
    try:
        return b"".join([_as_bytes(chunk) async for chunk in response.body_iterator])
    finally:
        close_response(response)


def _as_bytes(chunk: str | bytes | memoryview) -> bytes:
    return chunk.encode("utf-8") if isinstance(chunk, str) else bytes(chunk)


async def _model_error(container: Response, *, variant: str, request_id: str) -> JSONResponse:
    original = (await read_body(container)).decode("utf-8", errors="replace")
    status = container.status_code
    side = "client" if status < 500 else "server"
    message = f'Received {side} error ({status}) from {variant} with message "{original}".'
    return runtime_error(424, "ModelError", message, request_id, OriginalStatusCode=status, OriginalMessage=original)


async def _service_unavailable(container: Response, *, endpoint_name: str, request_id: str) -> JSONResponse:
    """The container cannot take the request now (queue full, draining): a throttle, not a model error."""
    message = _error_message(await read_body(container))
    retry_after = container.headers.get("retry-after")
    return runtime_error(
        503,
        "ServiceUnavailable",
        f"Endpoint {endpoint_name} is unavailable: {message}",
        request_id,
        headers={"Retry-After": retry_after} if retry_after else None,
    )


def _error_message(body: bytes) -> str:
    """The message of an OpenAI (``{"error": {"message"}}``) or TEI (``{"error": "..."}``) error body."""
    text = body.decode("utf-8", errors="replace")
    try:
        error = json.loads(text).get("error")
    except (json.JSONDecodeError, AttributeError):
        return text
    if isinstance(error, dict):
        return str(error.get("message", text))
    return str(error) if error else text


async def _precheck(state: ServerState, endpoint_name: str, request: Request, request_id: str) -> Task | Response:
    """Resolve the endpoint and refuse what SageMaker itself would refuse before the container."""
    try:
        task = resolve_endpoint(state.config, endpoint_name, request.headers.get(INFERENCE_COMPONENT_HEADER))
    except EndpointNotFoundError as exc:
        return runtime_error(404, "ValidationError", str(exc), request_id)
    target_variant = request.headers.get(TARGET_VARIANT_HEADER)
    if target_variant and target_variant != state.config.variant_name:
        message = f"Variant {target_variant} not found for endpoint {endpoint_name}."
        return runtime_error(400, "ValidationError", message, request_id)
    if not state.ready:
        # 503 ServiceUnavailable is what boto3 retries on its own while the models load.
        error = state.unavailable_error()
        if state.draining:
            reason = "shutting down"
        elif state.load_error:
            reason = f"failed to load: {state.load_error}"
        else:
            reason = "still loading"
        return runtime_error(
            503, "ServiceUnavailable", f"Endpoint {endpoint_name} is {reason}.", request_id, headers=error.headers()
        )
    if task == "chat" and state.chat_capacity is not None and not state.chat_capacity.admit():
        # SageMaker's answer while the component has no copy: a 400 that boto3 does not retry and
        # that Strata's provider reads as "waking" (no Retry-After: the service sends none).
        return runtime_error(400, "ValidationError", NO_CAPACITY_MESSAGE, request_id)
    return task


async def invoke_endpoint(state: ServerState, endpoint_name: str, request: Request) -> Response:
    request_id = _request_id()
    container = await _invoke_container(state, endpoint_name, request, request_id)
    if not isinstance(container, _Answer):
        return container
    body = await read_body(container.response)
    headers = {
        "Content-Type": container.response.headers.get("content-type", "application/json"),
        VARIANT_HEADER: state.config.variant_name,
        REQUEST_ID_HEADER: request_id,
    }
    return Response(body, status_code=200, headers=headers)


async def invoke_endpoint_with_response_stream(state: ServerState, endpoint_name: str, request: Request) -> Response:
    request_id = _request_id()
    container = await _invoke_container(state, endpoint_name, request, request_id)
    if not isinstance(container, _Answer):
        return container
    headers = {
        STREAM_CONTENT_TYPE_HEADER: container.response.headers.get("content-type", "application/json"),
        VARIANT_HEADER: state.config.variant_name,
        REQUEST_ID_HEADER: request_id,
    }
    return ClosingStreamingResponse(
        _event_stream(container.response),
        # Stops the generation even when the client leaves before the first frame is sent.
        on_close=lambda: close_response(container.response),
        media_type=eventstream.CONTENT_TYPE,
        headers=headers,
    )


@dataclass(frozen=True, slots=True)
class _Answer:
    """The container's successful response, to be wrapped the runtime API's way."""

    response: Response


async def _invoke_container(
    state: ServerState, endpoint_name: str, request: Request, request_id: str
) -> Response | _Answer:
    """Check the request, run the container's invocation, and turn its errors into the runtime
    API's (errors before the first byte are HTTP errors: boto3 raises at the call, as on AWS)."""
    task = await _precheck(state, endpoint_name, request, request_id)
    if isinstance(task, Response):
        return task
    container = await invoke(state, await request.body(), request, expected=task)
    if container.status_code == 503:
        return await _service_unavailable(container, endpoint_name=endpoint_name, request_id=request_id)
    if container.status_code >= 400:
        return await _model_error(container, variant=state.config.variant_name, request_id=request_id)
    return _Answer(container)


async def _event_stream(container: Response) -> AsyncIterator[bytes]:
    """Frame the container's bytes as they come, one ``PayloadPart`` per chunk written."""
    if not isinstance(container, StreamingResponse):
        for frame in eventstream.payload_parts(bytes(container.body)):
            yield frame
        return
    chunks = container.body_iterator
    try:
        async for chunk in chunks:
            for frame in eventstream.payload_parts(_as_bytes(chunk)):
                yield frame
    except Exception:
        logger.exception("model stream failed")
        yield eventstream.model_stream_error("The model stream failed; see the server log.")
    finally:
        # Propagate a client disconnect to the generation so the model stops working for nobody.
        close_response(container)
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
