from __future__ import annotations

import base64
import struct
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from strata.embeddings import EmbeddingPipeline
from strata.web import CurrentPrincipal, CurrentRequest, embedding_pipeline

router = APIRouter(tags=["embeddings"])

MAX_INPUTS = 2048  # OpenAI's limit per request


def _valid_input(text: str) -> str:
    if not text:
        raise ValueError("an input must not be empty")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (found a lone surrogate)") from None
    return text


EmbeddingInput = Annotated[str, Field(min_length=1), AfterValidator(_valid_input)]


class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    # Text only: OpenAI also takes token arrays, but of its own tokenizer, not this model's.
    input: EmbeddingInput | Annotated[list[EmbeddingInput], Field(min_length=1, max_length=MAX_INPUTS)]
    model: str = "default"
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = None


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


@router.post("/v1/embeddings", response_model=EmbeddingList)
async def create_embeddings(
    request: EmbeddingRequest,
    principal: CurrentPrincipal,
    context: CurrentRequest,
    pipeline: Annotated[EmbeddingPipeline, Depends(embedding_pipeline)],
) -> JSONResponse:
    texts = [request.input] if isinstance(request.input, str) else request.input
    result = await run_in_threadpool(
        lambda: pipeline.run(texts, model=request.model, principal=principal, context=context)
    )
    body = EmbeddingList(
        data=[Embedding(index=i, embedding=_encode(v, request.encoding_format)) for i, v in enumerate(result.vectors)],
        model=request.model,
        usage=EmbeddingUsage(prompt_tokens=result.tokens, total_tokens=result.tokens),
    )
    return JSONResponse(body.model_dump(mode="json"), headers=result.headers)


def _encode(vector: list[float], encoding_format: str) -> list[float] | str:
    # The openai SDK asks for base64 by default: little-endian float32, as OpenAI sends it
    # (packed with struct: the api function never loads numpy).
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return vector
