"""POST /v1/chat/completions: FastAPI under the Lambda Web Adapter in response-stream mode.

The request flow: the authorizer already resolved the tenant → retrieve and assemble the prompt
→ stream the model's tokens back as SSE as they come, the last chunk carrying the citations.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from strata.chat import ChatCompletionRequest, ChatService, PreparedChat, new_request_id
from strata.inference import encode_sse
from strata.web import CurrentPrincipal, chat_service, error_body, install_error_handlers
from strata.web.errors import classify

logger = logging.getLogger(__name__)

app = FastAPI(title="Strata chat", version="0.1.0")
install_error_handlers(app)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@app.post("/v1/chat/completions")
async def chat_completions(
    request: ChatCompletionRequest,
    principal: CurrentPrincipal,
    chat: Annotated[ChatService, Depends(chat_service)],
) -> Any:
    chat.model_for(request.model)  # an unknown model is a 404 before anything streams
    prepared = await run_in_threadpool(chat.prepare, request, principal, new_request_id())
    if not request.stream:
        return await run_in_threadpool(chat.complete, request, prepared)
    return StreamingResponse(
        _sse(chat, request, prepared),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "x-request-id": prepared.request_id},
    )


async def _sse(chat: ChatService, request: ChatCompletionRequest, prepared: PreparedChat) -> AsyncIterator[str]:
    try:
        async for chunk in iterate_in_threadpool(chat.stream(request, prepared)):
            yield encode_sse(chunk)
    except Exception as error:  # headers are sent: report in the stream, as OpenAI does
        logger.exception("chat stream failed", extra={"request_id": prepared.request_id})
        _, type_, code = classify(error)
        yield encode_sse(error_body(str(error), type_=type_, code=code))
        return
    yield encode_sse("[DONE]")
