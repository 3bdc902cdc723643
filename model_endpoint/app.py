"""The ASGI app: SageMaker's container contract plus the SageMaker runtime API paths.

Routes stay thin: read the body, hand it to ``invocations`` / ``sagemaker_runtime``, return
what they answer. Models load in the background at start-up so ``GET /ping`` can say 503
("not yet") instead of refusing connections, which is what SageMaker's health check expects.
At shutdown the server drains: new requests get 503, the generations and embedding passes
still running finish, and only then are the models closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.requests import Request

from model_endpoint import sagemaker_runtime
from model_endpoint.admission import GenerationGate
from model_endpoint.backends.base import ChatBackend, EmbeddingBackend
from model_endpoint.batching import EmbeddingBatcher
from model_endpoint.config import ServerConfig
from model_endpoint.exceptions import InvalidRequestError
from model_endpoint.invocations import invoke, invoke_chat, invoke_embeddings, parse_json
from model_endpoint.serving_chat import OpenAIServingChat, openai_error_response
from model_endpoint.serving_embeddings import TEIServingEmbeddings, tei_error_response
from model_endpoint.state import ServerState, server_state

__all__ = ("create_app",)

logger = logging.getLogger(__name__)


def _default_chat_backend(config: ServerConfig) -> ChatBackend:
    from model_endpoint.backends.llama_cpp import LlamaCppChatBackend

    return LlamaCppChatBackend(
        config.chat_model_path,
        n_ctx=config.n_ctx,
        n_threads=config.n_threads,
        default_max_tokens=config.default_max_tokens,
    )


EMBEDDING_BACKENDS = ("sentence-transformers", "onnx-fp32", "onnx-int8")


def _default_embedding_backend(config: ServerConfig) -> EmbeddingBackend:
    if config.embedding_backend not in EMBEDDING_BACKENDS:
        raise ValueError(f"embedding_backend must be one of {EMBEDDING_BACKENDS}, got {config.embedding_backend!r}")
    if config.embedding_backend.startswith("onnx"):
        from model_endpoint.backends.onnx_embedding import OnnxEmbeddingBackend

        # Loaded with the chat model; a missing export fails the load, naming the export command.
        return OnnxEmbeddingBackend(quantized=config.embedding_backend == "onnx-int8")
    from model_endpoint.backends.sentence_transformers import SentenceTransformersEmbeddingBackend

    return SentenceTransformersEmbeddingBackend(config.embedding_model_path)


async def _load_models(state: ServerState) -> None:
    started = time.perf_counter()
    try:
        # Both loads block (file I/O, torch import): run them side by side, off the event loop.
        await asyncio.gather(
            asyncio.to_thread(state.chat_backend.load), asyncio.to_thread(state.embedding_backend.load)
        )
    except Exception as exc:
        state.load_error = f"{type(exc).__name__}: {exc}"
        logger.exception("model loading failed; /ping stays 503")
        return
    config = state.config
    # Built here, on the server's event loop, which their waiting primitives belong to.
    gate = GenerationGate(
        max_running=config.max_concurrent_generations,
        max_waiting=config.max_queued_generations,
        retry_after_s=config.retry_after_s,
    )
    batcher = (
        EmbeddingBatcher(
            state.embedding_backend,
            window_s=config.embedding_batch_window_ms / 1000,
            max_batch_size=config.embedding_max_batch_size,
        )
        if config.embedding_batching
        else None
    )
    state.chat = OpenAIServingChat(state.chat_backend, gate=gate)
    state.embeddings = TEIServingEmbeddings(
        state.embedding_backend,
        auto_truncate=config.auto_truncate,
        max_client_batch_size=config.max_client_batch_size,
        batcher=batcher,
    )
    logger.info(
        "model server ready in %.2fs: chat=%s, embeddings=%s (%d dims); endpoints %s, %s; "
        "embedding batching %s; up to %d generation(s) queued",
        time.perf_counter() - started,
        state.chat_backend.model_name,
        state.embedding_backend.model_name,
        state.embedding_backend.dimensions,
        config.chat_endpoint,
        config.embedding_endpoint,
        f"on ({config.embedding_batch_window_ms:g} ms, {config.embedding_max_batch_size} texts)" if batcher else "off",
        config.max_queued_generations,
    )


async def _drain(state: ServerState) -> None:
    """Wait (bounded) for the generations and embedding passes still running, before closing the models.

    uvicorn has already waited for the open responses by now (``timeout_graceful_shutdown``),
    but a generation whose response was cut still runs to its next token in a worker thread,
    and a backend's ``close`` need not be safe to call while the model is in use.
    """
    waits: list[Awaitable[None]] = []
    if state.chat is not None:
        waits.append(state.chat.wait_idle())
    if state.embeddings is not None:
        waits.append(state.embeddings.aclose())
    if not waits:
        return
    try:
        await asyncio.wait_for(asyncio.gather(*waits), timeout=state.config.graceful_shutdown_s)
    except TimeoutError:
        logger.warning(
            "work still running %.0fs into shutdown; closing the models anyway", state.config.graceful_shutdown_s
        )


def create_app(
    config: ServerConfig | None = None,
    chat_backend: ChatBackend | None = None,
    embedding_backend: EmbeddingBackend | None = None,
) -> FastAPI:
    """Build the model server. Backends default to llama.cpp and sentence-transformers.

    Examples
    --------
    >>> app = create_app(ServerConfig(port=8080))
    >>> uvicorn.run(app, host="127.0.0.1", port=8080)
    """
    config = config or ServerConfig()
    state = ServerState(
        config=config,
        chat_backend=chat_backend or _default_chat_backend(config),
        embedding_backend=embedding_backend or _default_embedding_backend(config),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loading = asyncio.create_task(_load_models(state))
        try:
            yield
        finally:
            state.draining = True  # already set on SIGTERM when served by `python -m model_endpoint`
            await loading  # a half-loaded model must not be closed under the loader's feet
            await _drain(state)
            await asyncio.to_thread(_close_backends, state)

    app = FastAPI(title="Strata model endpoint", lifespan=lifespan)
    # On the app from the start (not only once the lifespan runs): the server's signal handler
    # marks it draining through it.
    app.state.server = state
    _add_routes(app)
    return app


def _close_backends(state: ServerState) -> None:
    for backend in (state.chat_backend, state.embedding_backend):
        try:
            backend.close()
        except Exception:
            logger.exception("closing %s failed", type(backend).__name__)


def _add_routes(app: FastAPI) -> None:
    @app.get("/ping")
    async def ping(request: Request) -> Response:
        state = server_state(request)
        if state.ready:
            return JSONResponse({"status": "healthy"})
        if state.draining:
            status: dict[str, str | None] = {"status": "draining"}
        elif state.load_error:
            status = {"status": "failed", "error": state.load_error}
        else:
            status = {"status": "loading"}
        return JSONResponse(status, status_code=503)

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        return await invoke(server_state(request), await request.body(), request)

    @app.post("/endpoints/{endpoint_name}/invocations")
    async def runtime_invoke(endpoint_name: str, request: Request) -> Response:
        return await sagemaker_runtime.invoke_endpoint(server_state(request), endpoint_name, request)

    @app.post("/endpoints/{endpoint_name}/invocations-response-stream")
    async def runtime_invoke_stream(endpoint_name: str, request: Request) -> Response:
        return await sagemaker_runtime.invoke_endpoint_with_response_stream(
            server_state(request), endpoint_name, request
        )

    # The routes vLLM and TEI serve natively, handy for pointing an OpenAI/TEI client straight here.
    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        try:
            payload = parse_json(await request.body())
        except InvalidRequestError as exc:
            return openai_error_response(exc)
        return await invoke_chat(server_state(request), payload, request)

    @app.post("/embed")
    async def embed(request: Request) -> Response:
        try:
            payload = parse_json(await request.body())
        except InvalidRequestError as exc:
            return tei_error_response(exc, status_code=422)
        return await invoke_embeddings(server_state(request), payload)
