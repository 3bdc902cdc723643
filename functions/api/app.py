"""Buffered routes (FastAPI via Mangum): models, embeddings, documents, health."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from mangum import Mangum
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from strata.documents import DocumentRecord, DocumentRegistry
from strata.inference import BreakerState, CircuitBreakers, ModelRegistry, SageMakerEmbedder
from strata.observability import function_logger
from strata.web import (
    CurrentPrincipal,
    breakers,
    document_registry,
    embedder,
    install_error_handlers,
    model_registry,
)

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


class TargetHealth(BaseModel):
    provider: str
    breaker: BreakerState
    failures: int
    last_error: str | None = None


class Health(BaseModel):
    # ok: every target closed; degraded: some open, the default still has one to serve it;
    # unavailable (503): every target of the default alias is open.
    status: Literal["ok", "degraded", "unavailable"]
    models: dict[str, TargetHealth]


@app.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(
    registry: Annotated[ModelRegistry, Depends(model_registry)],
    circuit: Annotated[CircuitBreakers, Depends(breakers)],
) -> Any:
    models = {}
    for alias, target in registry.models.items():
        record = circuit.state(alias)
        models[alias] = TargetHealth(
            provider=target.provider, breaker=record.state, failures=record.failures, last_error=record.last_error
        )
    open_ = {alias for alias, health in models.items() if health.breaker is BreakerState.OPEN}
    if all(alias in open_ for alias in registry.chain("default")):
        return JSONResponse(Health(status="unavailable", models=models).model_dump(mode="json"), status_code=503)
    return Health(status="degraded" if open_ else "ok", models=models)


@app.get("/v1/models")
def list_models(_: CurrentPrincipal, registry: Annotated[ModelRegistry, Depends(model_registry)]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": alias, "object": "model", "created": 0, "owned_by": "strata"} for alias in registry.aliases],
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
