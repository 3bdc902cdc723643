"""text-embeddings-inference's ``/embed`` on top of an ``EmbeddingBackend``."""

from __future__ import annotations

import json
import logging

from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from model_endpoint.backends.base import EmbeddingBackend
from model_endpoint.batching import EmbeddingBatcher, EmbedOptions
from model_endpoint.exceptions import (
    BackendError,
    InvalidRequestError,
    ModelEndpointError,
    PayloadTooLargeError,
    ServerOverloadedError,
    ServiceUnavailableError,
)
from model_endpoint.protocol import EmbedRequest, TEIErrorResponse

__all__ = ("TEIServingEmbeddings", "tei_error_response")

logger = logging.getLogger(__name__)


def _tei_error_type(exc: ModelEndpointError) -> str:
    # TEI's ErrorType names, so clients written against TEI can branch on them.
    if isinstance(exc, PayloadTooLargeError):
        return "Validation"
    if isinstance(exc, InvalidRequestError):
        return "Empty" if exc.param == "inputs" else "Validation"
    if isinstance(exc, ServerOverloadedError):
        return "Overloaded"
    if isinstance(exc, ServiceUnavailableError):
        return "Unhealthy"
    return "Backend"


def tei_error_response(exc: ModelEndpointError, status_code: int | None = None) -> JSONResponse:
    body = TEIErrorResponse(error=exc.message, error_type=_tei_error_type(exc))
    return JSONResponse(body.model_dump(), status_code=status_code or exc.status_code, headers=exc.headers())


class TEIServingEmbeddings:
    """Validates the batch, embeds it off the event loop and answers ``list[list[float]]``.

    With a ``batcher``, concurrent requests share forward passes; without one, each request
    runs its own pass (the backend still runs them one at a time).
    """

    def __init__(
        self,
        backend: EmbeddingBackend,
        *,
        auto_truncate: bool,
        max_client_batch_size: int,
        batcher: EmbeddingBatcher | None = None,
    ) -> None:
        self._backend = backend
        self._auto_truncate = auto_truncate
        self._max_client_batch_size = max_client_batch_size
        self._batcher = batcher

    @property
    def model_name(self) -> str:
        return self._backend.model_name

    async def embed(self, request: EmbedRequest) -> Response:
        try:
            texts = self._validated_texts(request)
            options = EmbedOptions(
                normalize=request.normalize,
                truncate=self._auto_truncate if request.truncate is None else request.truncate,
                truncate_left=request.truncation_direction.lower() == "left",
            )
            vectors = await self._embed(texts, options)
        except ModelEndpointError as exc:
            return tei_error_response(exc)
        except Exception as exc:
            logger.error("embedding failed", exc_info=exc)
            return tei_error_response(BackendError("the model failed while embedding; see the server log"))
        # Vectors are plain floats; json.dumps is enough and skips a pydantic pass over 384*N numbers.
        return Response(json.dumps(vectors, separators=(",", ":")), media_type="application/json")

    async def aclose(self) -> None:
        """Let the embedding passes already queued finish (at shutdown, before the model is closed)."""
        if self._batcher is not None:
            await self._batcher.aclose()

    async def _embed(self, texts: list[str], options: EmbedOptions) -> list[list[float]]:
        if self._batcher is not None:
            return await self._batcher.embed(texts, options)
        return await run_in_threadpool(
            self._backend.embed,
            texts,
            normalize=options.normalize,
            truncate=options.truncate,
            truncate_left=options.truncate_left,
        )

    def _validated_texts(self, request: EmbedRequest) -> list[str]:
        texts = request.texts()
        if not texts:
            raise InvalidRequestError("`inputs` cannot be empty", param="inputs")
        if any(not text for text in texts):
            raise InvalidRequestError("`inputs` cannot contain empty strings", param="inputs")
        if len(texts) > self._max_client_batch_size:
            raise PayloadTooLargeError(
                f"batch size {len(texts)} > maximum allowed batch size {self._max_client_batch_size}",
                param="inputs",
            )
        return texts
