"""POST /v1/chat/completions: FastAPI under the Lambda Web Adapter in response-stream mode.

The request flow: the authorizer already resolved the tenant → retrieve and assemble the prompt
→ stream the model's tokens back as SSE as they come, the last chunk carrying the citations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from strata.chat import ChatCompletionChunk, ChatCompletionRequest, ChatService, new_request_id
from strata.inference import DONE, encode_sse
from strata.observability import function_logger
from strata.web import CurrentPrincipal, chat_service, install_error_handlers, public_error_body
from strata.web.streaming import ThreadedStream

logger = function_logger("strata-chat")

app = FastAPI(title="Strata chat", version="0.1.0")
install_error_handlers(app)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Each open stream is read by one thread of its own, so that many of them cannot starve the
# request handling that shares the default pool (40); 256 is this process's ceiling of streams.
STREAM_READERS = ThreadPoolExecutor(max_workers=256, thread_name_prefix="chat-stream")


@app.post("/v1/chat/completions")
async def chat_completions(
    request: ChatCompletionRequest,
    principal: CurrentPrincipal,
    chat: Annotated[ChatService, Depends(chat_service)],
) -> Any:
    chat.target_for(request.model)  # an unknown model is a 404 before anything streams
    request_id = new_request_id()
    if not request.stream:
        return await run_in_threadpool(lambda: chat.complete(request, chat.prepare(request, principal, request_id)))

    def pipeline() -> Iterator[ChatCompletionChunk]:
        yield from chat.stream(request, chat.prepare(request, principal, request_id))

    chunks: ThreadedStream[ChatCompletionChunk] = ThreadedStream(pipeline, executor=STREAM_READERS)
    # Wait for the first chunk before answering: retrieval or a model that is down or refuses
    # the request is an HTTP error with the right status, not a 200 with a broken stream.
    try:
        first = await anext(chunks)
    except BaseException:
        await chunks.aclose()
        raise
    return StreamingResponse(
        _sse(first, chunks, request_id),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, "x-request-id": request_id},
    )


async def _sse(
    first: ChatCompletionChunk, rest: ThreadedStream[ChatCompletionChunk], request_id: str
) -> AsyncIterator[str]:
    try:
        yield encode_sse(first.model_dump_json())
        async for chunk in rest:
            yield encode_sse(chunk.model_dump_json())
    except Exception as error:  # the headers are sent: report in the stream, as OpenAI does
        logger.exception("chat stream %s failed", request_id)
        yield encode_sse(public_error_body(error)[1])
        return
    finally:
        # Also when the client leaves: closing the upstream stream stops the model's generation.
        await rest.aclose()
    yield encode_sse(DONE)
