from __future__ import annotations

import base64
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from strata.inference import SageMakerEmbedder
from strata.web import CurrentPrincipal, embedder

router = APIRouter(tags=["embeddings"])


class EmbeddingRequest(BaseModel):
    input: str | list[str] = Field(min_length=1)
    model: str = "default"
    encoding_format: Literal["float", "base64"] = "float"


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


@router.post("/v1/embeddings")
async def create_embeddings(
    request: EmbeddingRequest, _: CurrentPrincipal, model: Annotated[SageMakerEmbedder, Depends(embedder)]
) -> EmbeddingList:
    texts = [request.input] if isinstance(request.input, str) else request.input
    vectors = await run_in_threadpool(model.embed, texts)
    return EmbeddingList(
        data=[Embedding(index=i, embedding=_encode(v, request.encoding_format)) for i, v in enumerate(vectors)],
        model=request.model,
        usage=EmbeddingUsage(prompt_tokens=0, total_tokens=0),
    )


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    # The openai SDK asks for base64 by default: little-endian float32, as OpenAI sends it.
    if encoding_format == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector
