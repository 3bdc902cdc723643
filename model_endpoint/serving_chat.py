"""OpenAI chat completions on top of a ``ChatBackend``, buffered or as SSE (like vLLM's).

Every generation first takes a slot from a ``GenerationGate``: the model runs one at a time,
a bounded number wait, and the rest are answered 503 with ``Retry-After`` straight away.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

from fastapi.responses import JSONResponse, Response
from starlette.requests import Request

from model_endpoint.admission import GenerationGate
from model_endpoint.backends.base import (
    ChatBackend,
    ChatMessage,
    ChatParams,
    GenerationEnd,
    GenerationEvent,
    TokenText,
)
from model_endpoint.exceptions import BackendError, ModelEndpointError
from model_endpoint.protocol import (
    ChatCompletionChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionStreamChoice,
    ChatCompletionStreamResponse,
    DeltaMessage,
    ErrorInfo,
    ErrorResponse,
    ResponseMessage,
    UsageInfo,
)
from model_endpoint.responses import ClosingStreamingResponse
from model_endpoint.threaded import ThreadedIterator

__all__ = ("SSE_DONE", "OpenAIServingChat", "openai_error_response")

logger = logging.getLogger(__name__)

SSE_DONE = b"data: [DONE]\n\n"
# Proxies (nginx, some CDNs) buffer responses unless told not to; tokens must flow as made.
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# A buffered request checks every this many tokens whether its client is still there.
_DISCONNECT_CHECK_EVERY = 8


def openai_error_response(exc: ModelEndpointError) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorInfo(message=exc.message, type=exc.error_type, param=exc.param, code=exc.status_code)
    )
    return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers())


def _as_endpoint_error(exc: Exception) -> ModelEndpointError:
    if isinstance(exc, ModelEndpointError):
        return exc
    # Unexpected backend failures are logged in full here and reach the client without internals.
    logger.error("chat generation failed", exc_info=exc)
    return BackendError("the model failed while generating; see the server log")


def _sse(payload: str) -> bytes:
    return f"data: {payload}\n\n".encode()


class OpenAIServingChat:
    """Turns chat-completion requests into backend generations and shapes the replies."""

    def __init__(self, backend: ChatBackend, *, gate: GenerationGate) -> None:
        self._backend = backend
        self._gate = gate

    @property
    def model_name(self) -> str:
        return self._backend.model_name

    async def wait_idle(self) -> None:
        """Return once no generation runs or waits: the model can then be closed safely."""
        await self._gate.wait_idle()

    async def create_chat_completion(
        self, request: ChatCompletionRequest, raw_request: Request | None = None
    ) -> Response:
        params = _to_params(request)
        try:
            slot = await self._gate.acquire(abandoned=raw_request.is_disconnected if raw_request else None)
        except ModelEndpointError as exc:
            return openai_error_response(exc)
        # The slot goes back when the backend's generation has really ended (client gone included),
        # not when the response is sent: that is when the model is free for the next one.
        events: ThreadedIterator[GenerationEvent] = ThreadedIterator(
            lambda cancelled: self._backend.generate(params, cancelled), on_finish=slot.release
        )
        # Wait for the first event before answering: errors found before any token (prompt too
        # long, bad template) still get a proper HTTP status instead of a broken stream.
        try:
            first = await anext(events)
        except StopAsyncIteration:
            return openai_error_response(_as_endpoint_error(BackendError("the model produced no output")))
        except Exception as exc:
            events.cancel()
            return openai_error_response(_as_endpoint_error(exc))
        except BaseException:
            events.cancel()
            raise
        if request.stream:
            return ClosingStreamingResponse(
                self._stream(request, first, events),
                on_close=events.cancel,
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )
        return await self._collect(first, events, raw_request)

    async def _collect(
        self,
        first: GenerationEvent,
        events: ThreadedIterator[GenerationEvent],
        raw_request: Request | None,
    ) -> Response:
        parts: list[str] = []
        event = first
        try:
            while isinstance(event, TokenText):
                parts.append(event.text)
                if (
                    raw_request is not None
                    and len(parts) % _DISCONNECT_CHECK_EVERY == 0
                    and await raw_request.is_disconnected()
                ):
                    events.cancel()  # nobody will read the answer; free the model for others
                event = await anext(events)
        except Exception as exc:
            return openai_error_response(_as_endpoint_error(exc))
        finally:
            events.cancel()
        end = _require_end(event)
        response = ChatCompletionResponse(
            model=self.model_name,
            choices=[
                ChatCompletionChoice(message=ResponseMessage(content="".join(parts)), finish_reason=end.finish_reason)
            ],
            usage=_usage(end),
        )
        return JSONResponse(response.model_dump())

    async def _stream(
        self,
        request: ChatCompletionRequest,
        first: GenerationEvent,
        events: ThreadedIterator[GenerationEvent],
    ) -> AsyncIterator[bytes]:
        chunk_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        include_usage = request.include_usage()

        def chunk(choices: list[ChatCompletionStreamChoice], usage: UsageInfo | None = None) -> bytes:
            body = ChatCompletionStreamResponse(
                id=chunk_id, created=created, model=self.model_name, choices=choices, usage=usage
            )
            # "usage": null appears on every chunk only when the client asked for usage (OpenAI).
            return _sse(body.model_dump_json(exclude=None if include_usage else {"usage"}))

        try:
            yield chunk([ChatCompletionStreamChoice(delta=DeltaMessage(role="assistant", content=""))])
            event = first
            while isinstance(event, TokenText):
                yield chunk([ChatCompletionStreamChoice(delta=DeltaMessage(content=event.text))])
                event = await anext(events)
            end = _require_end(event)
            yield chunk([ChatCompletionStreamChoice(delta=DeltaMessage(), finish_reason=end.finish_reason)])
            if include_usage:
                yield chunk([], usage=_usage(end))
        except Exception as exc:
            # Headers are gone already: report in-band, as vLLM does, then end the stream cleanly.
            error = _as_endpoint_error(exc)
            info = ErrorInfo(message=error.message, type=error.error_type, param=error.param, code=error.status_code)
            yield _sse(ErrorResponse(error=info).model_dump_json())
        finally:
            # Runs on normal end, on error and when the client disconnects (the task is cancelled).
            events.cancel()
        yield SSE_DONE


def _to_params(request: ChatCompletionRequest) -> ChatParams:
    return ChatParams(
        messages=[ChatMessage(role=m.template_role(), content=m.text()) for m in request.messages],
        max_tokens=request.token_budget(),
        temperature=request.temperature,
        top_p=request.top_p,
        stop=request.stop_list(),
        seed=request.seed,
        presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty,
        repetition_penalty=request.repetition_penalty,
        add_generation_prompt=request.generation_prompt(),
        continue_final_message=request.continue_final_message,
    )


def _require_end(event: GenerationEvent) -> GenerationEnd:
    if not isinstance(event, GenerationEnd):  # pragma: no cover - a backend contract violation
        raise BackendError("the model stream ended without a finish reason")
    return event


def _usage(end: GenerationEnd) -> UsageInfo:
    return UsageInfo(
        prompt_tokens=end.usage.prompt_tokens,
        completion_tokens=end.usage.completion_tokens,
        total_tokens=end.usage.total_tokens,
    )
