"""Buffered routes (FastAPI via Mangum): models, embeddings, documents, health."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI
from mangum import Mangum
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from strata.config import Settings, get_settings
from strata.documents import DocumentRecord, DocumentRegistry
from strata.inference import SageMakerEmbedder
from strata.observability import function_logger
from strata.web import CurrentPrincipal, document_registry, embedder, install_error_handlers

logger = function_logger("strata-api")
app = FastAPI(title="Strata API", version="0.1.0")
install_error_handlers(app)


class EmbeddingRequest(BaseModel):
    input: str | list[str] = Field(min_length=1)
    model: str = "default"
    encoding_format: Literal["float", "base64"] = "float"


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentRecord]


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/models")
def list_models(_: CurrentPrincipal, settings: Annotated[Settings, Depends(get_settings)]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": settings.default_model, "object": "model", "created": 0, "owned_by": "strata"}],
    }


@app.post("/v1/embeddings")
async def create_embeddings(
    request: EmbeddingRequest, _: CurrentPrincipal, model: Annotated[SageMakerEmbedder, Depends(embedder)]
) -> dict[str, Any]:
    texts = [request.input] if isinstance(request.input, str) else request.input
    vectors = await run_in_threadpool(model.embed, texts)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(v, request.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": request.model,
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }


@app.get("/v1/documents")
def list_documents(
    principal: CurrentPrincipal, registry: Annotated[DocumentRegistry, Depends(document_registry)]
) -> DocumentList:
    return DocumentList(data=registry.list(principal.tenant))


@app.get("/v1/documents/{document_id}")
def get_document(
    document_id: str,
    principal: CurrentPrincipal,
    registry: Annotated[DocumentRegistry, Depends(document_registry)],
) -> DocumentRecord:
    return registry.get(principal.tenant, document_id)


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    # The openai SDK asks for base64 by default: little-endian float32, as OpenAI sends it.
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector


handler = Mangum(app, lifespan="off")
