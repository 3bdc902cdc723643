"""POST /v1/chat/completions: FastAPI under the Lambda Web Adapter in response-stream mode.

The handler is parse → run the pipeline (strata.chat) → SSE; the authorizer already resolved
the caller, and the pipeline admits, retrieves, assembles, infers, validates and settles.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from strata.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, ChatPipeline, StreamProgress
from strata.inference import DONE, encode_sse
from strata.observability import function_logger
from strata.web import CurrentPrincipal, CurrentRequest, chat_pipeline, install_error_handlers, public_error_body
from strata.web.cors import install_cors
from strata.web.streaming import ThreadedStream

logger = function_logger("strata-chat")

app = FastAPI(title="Strata chat", version="0.1.0")
install_error_handlers(app)
install_cors(app)

# One server-sent event of the stream (the schema describes each event, as OpenAPI 3.2's
# ``itemSchema`` does): its ``data`` is a chunk, the final ``[DONE]``, or the error that broke it;
# with ``strata.progress``, an ``event: progress`` says what the answer waits for.
PROGRESS_EVENT = "progress"
SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "anyOf": [
        {
            "required": ["event"],
            "properties": {
                "event": {"const": PROGRESS_EVENT},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": "#/components/schemas/StreamProgress"},
                },
            },
        },
        {"properties": {"event": {"const": "message"}}},
    ],
    "properties": {
        "event": {"enum": ["message", PROGRESS_EVENT]},
        "data": {
            "anyOf": [
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": "#/components/schemas/ChatCompletionChunk"},
                },
                {"const": DONE},
                {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": "#/components/schemas/ErrorResponse"},
                },
            ]
        },
    },
}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Each open stream is read by one thread of its own, so that many of them cannot starve the
# request handling that shares the default pool (40); 256 is this process's ceiling of streams.
STREAM_READERS = ThreadPoolExecutor(max_workers=256, thread_name_prefix="chat-stream")


@app.post(
    "/v1/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {
            "description": "The completion (``stream: false``), or its chunks as server-sent events: one "
            "``data: <chat.completion.chunk JSON>`` per chunk, then ``data: [DONE]``; a stream that breaks "
            'ends with ``data: {"error": ...}`` instead of ``[DONE]``. With ``strata.progress``, the stream '
            "opens once the request is admitted, with ``event: progress`` events before the first chunk, and "
            "an error after admission (the model down or waking) is its error event",
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
        }
    },
)
async def chat_completions(
    request: ChatCompletionRequest,
    principal: CurrentPrincipal,
    context: CurrentRequest,
    pipeline: Annotated[ChatPipeline, Depends(chat_pipeline)],
) -> Any:
    turn = pipeline.start(request, principal, context)
    headers = {"x-request-id": turn.request_id}
    if not request.stream:
        completion = await run_in_threadpool(pipeline.complete, turn)
        return JSONResponse(completion.model_dump(mode="json"), headers={**headers, **turn.rate_limit_headers})

    progress = request.strata.progress
    chunks: ThreadedStream[ChatCompletionChunk | StreamProgress] = ThreadedStream(
        lambda: pipeline.stream(turn, progress=progress), executor=STREAM_READERS
    )
    # Wait for the first item before answering: a refusal, or a model that is down or refuses
    # the request, is an HTTP error with the right status, not a 200 with a broken stream. (With
    # progress, the first item comes once the request is admitted.)
    try:
        first = await anext(chunks)
    except BaseException:
        await chunks.aclose()
        raise
    return StreamingResponse(
        _sse(first, chunks, turn.request_id),
        media_type="text/event-stream",
        headers={**SSE_HEADERS, **headers, **turn.rate_limit_headers},
    )


async def _sse(
    first: ChatCompletionChunk | StreamProgress,
    rest: ThreadedStream[ChatCompletionChunk | StreamProgress],
    request_id: str,
) -> AsyncIterator[str]:
    try:
        yield _event(first)
        async for item in rest:
            yield _event(item)
    except Exception as error:  # the headers are sent: report in the stream, as OpenAI does
        logger.warning("chat stream %s broke: %s", request_id, error)
        yield encode_sse(public_error_body(error)[1])
        return
    finally:
        # Also when the client leaves: closing the upstream stream stops the model's generation.
        await rest.aclose()
    yield encode_sse(DONE)


def _event(item: ChatCompletionChunk | StreamProgress) -> str:
    if isinstance(item, StreamProgress):
        return encode_sse(item.model_dump_json(exclude_none=True), event=PROGRESS_EVENT)
    return encode_sse(item.model_dump_json())
