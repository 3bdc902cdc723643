"""The container's ``/invocations``: the payload's shape picks the model.

``{"messages": [...]}`` is an OpenAI chat-completions request (what AWS's vLLM/LMI containers
take); ``{"inputs": ...}`` is a text-embeddings-inference request (what the TEI container takes).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi.responses import Response
from pydantic import ValidationError
from starlette.requests import Request

from model_endpoint.exceptions import InvalidRequestError
from model_endpoint.protocol import ChatCompletionRequest, EmbedRequest, describe_validation_error
from model_endpoint.serving_chat import openai_error_response
from model_endpoint.serving_embeddings import tei_error_response
from model_endpoint.state import ServerState

__all__ = ("Task", "detect_task", "invoke", "invoke_chat", "invoke_embeddings", "parse_json")

Task = Literal["chat", "embeddings"]


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise InvalidRequestError("the request body is empty; send a JSON object")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequestError(f"the request body is not valid JSON: {exc}") from None


def detect_task(payload: Any) -> Task:
    if not isinstance(payload, dict):
        raise InvalidRequestError("the request body must be a JSON object")
    has_messages, has_inputs = "messages" in payload, "inputs" in payload
    if has_messages and has_inputs:
        raise InvalidRequestError("send either `messages` (chat) or `inputs` (embeddings), not both")
    if has_messages:
        return "chat"
    if has_inputs:
        return "embeddings"
    raise InvalidRequestError(
        "cannot tell the task from the body: send `messages` (OpenAI chat completions) "
        "or `inputs` (text-embeddings-inference)"
    )


async def invoke(
    state: ServerState, body: bytes, raw_request: Request | None, *, expected: Task | None = None
) -> Response:
    """Answer one invocation the way the model container would (errors included)."""
    try:
        payload = parse_json(body)
        task = detect_task(payload)
        if expected is not None and task != expected:
            raise InvalidRequestError(
                f"this endpoint serves {expected}, but the body is a {task} request "
                f"(`{'messages' if task == 'chat' else 'inputs'}`)"
            )
    except InvalidRequestError as exc:
        return openai_error_response(exc)
    if task == "chat":
        return await invoke_chat(state, payload, raw_request)
    return await invoke_embeddings(state, payload)


async def invoke_chat(state: ServerState, payload: Any, raw_request: Request | None) -> Response:
    if state.chat is None or not state.ready:
        return openai_error_response(state.unavailable_error())
    try:
        request = ChatCompletionRequest.model_validate(payload)
    except ValidationError as exc:
        # vLLM answers a malformed chat request with 400, not FastAPI's 422.
        return openai_error_response(InvalidRequestError(describe_validation_error(exc)))
    return await state.chat.create_chat_completion(request, raw_request)


async def invoke_embeddings(state: ServerState, payload: Any) -> Response:
    if state.embeddings is None or not state.ready:
        return tei_error_response(state.unavailable_error())
    try:
        request = EmbedRequest.model_validate(payload)
    except ValidationError as exc:
        # TEI answers a body that does not deserialize with 422.
        return tei_error_response(InvalidRequestError(describe_validation_error(exc)), status_code=422)
    return await state.embeddings.embed(request)
