"""POST /v1/chat/completions: FastAPI under the Lambda Web Adapter in response-stream mode.

The request flow: the authorizer already resolved the tenant → retrieve and assemble the prompt
→ stream the model's tokens back as SSE as they come, the last chunk carrying the citations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Annotated, Any

import anyio
from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from strata.chat import ChatCompletionRequest, ChatService, new_request_id
from strata.inference import DONE, encode_sse
from strata.observability import function_logger
from strata.web import CurrentPrincipal, chat_service, install_error_handlers, public_error_body

logger = function_logger("strata-chat")

app = FastAPI(title="Strata chat", version="0.1.0")
install_error_handlers(app)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# An open stream waits in a worker thread for each next chunk. Streams get threads of their own
# so that many of them cannot starve the request handling that shares the default pool (40).
STREAM_READERS = anyio.CapacityLimiter(256)


@app.post("/v1/chat/completions")
async def chat_completions(
    request: ChatCompletionRequest,
    principal: CurrentPrincipal,
    chat: Annotated[ChatService, Depends(chat_service)],
) -> Any:
    chat.target_for(request.model)  # an unknown model is a 404 before anything streams
    prepared = await run_in_threadpool(chat.prepare, request, principal, new_request_id())
    if not request.stream:
        return await run_in_threadpool(chat.complete, request, prepared)
    chunks = chat.stream(request, prepared)
    # Pull the first chunk before answering: an endpoint that is down or refuses the request is
    # an HTTP error with the right status, not a 200 with a broken stream.
    first = await anyio.to_thread.run_sync(next, chunks, None, limiter=STREAM_READERS)
    return StreamingResponse(
        _sse(first, chunks, prepared.request_id),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "x-request-id": prepared.request_id},
    )


async def _sse(
    first: dict[str, Any] | None, rest: Generator[dict[str, Any], None, None], request_id: str
) -> AsyncIterator[str]:
    try:
        chunk = first
        while chunk is not None:
            yield encode_sse(chunk)
            chunk = await anyio.to_thread.run_sync(next, rest, None, limiter=STREAM_READERS)
    except Exception as error:  # the headers are sent: report in the stream, as OpenAI does
        logger.exception("chat stream %s failed", request_id)
        yield encode_sse(public_error_body(error)[1])
        return
    finally:
        # Also when the client leaves: closing the upstream stream stops the model's generation.
        rest.close()
    yield encode_sse(DONE)
