"""POST /v1/search: the tenant's chunks for a query, ranked, without generation.

On the api function, not chat: the answer is one buffered JSON body, and the api function
already holds the embedder (``/v1/embeddings``); it needs only read access to the chunk index.
The search runs on the chat's own store and query-embedding cache, with the same modes: the
store's ranking, before the relevance floor (and before any re-ranking or MMR the chat's
retriever applies), so a caller sees every candidate with its scores.
"""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Le
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from functions.api.routes.errors import error_responses
from strata.auth import Principal
from strata.chat.protocol import Text, integer
from strata.config import Settings, get_settings
from strata.embeddings.pipeline import count_tokens
from strata.retrieval import MAX_K, QueryEmbedder, SearchHit, SearchMode, VectorStore
from strata.throttle import RateLimiter
from strata.web import CurrentPrincipal
from strata.web.dependencies import query_embedder, rate_limiter, vector_store

router = APIRouter(tags=["search"])

MAX_QUERY_CHARS = 4000
MAX_DOCUMENT_IDS = 100
MAX_FILTERS = 16

FilterKey = Annotated[Text, Field(min_length=1, max_length=128)]
FilterValue = Annotated[Text, Field(max_length=1024)]


class SearchRequest(BaseModel):
    # As the chat request: no coercion ("5" is not a number), no unknown fields (no "tenant").
    model_config = ConfigDict(strict=True, extra="forbid")

    query: Annotated[Text, Field(min_length=1, max_length=MAX_QUERY_CHARS)]
    k: integer(Ge(1), Le(MAX_K)) = 5
    mode: Annotated[SearchMode, Field(strict=False)] = SearchMode.HYBRID  # a JSON string names the member
    # Only these documents; an empty list matches nothing.
    document_ids: Annotated[list[Annotated[Text, Field(min_length=1)]], Field(max_length=MAX_DOCUMENT_IDS)] | None = (
        None
    )
    # Exact matches on the documents' metadata (S3 x-amz-meta-*), all required.
    filters: Annotated[dict[FilterKey, FilterValue], Field(max_length=MAX_FILTERS)] | None = None


class HitScores(BaseModel):
    keyword: float | None = Field(description="BM25 of the query's words; null where the store did not compute it")
    vector: float | None = Field(description="cosine similarity to the query, in [-1, 1]; null in keyword mode")
    fused: float = Field(description="the mode's ranking score (hybrid: fused and normalized per query)")


class SearchResult(BaseModel):
    document_id: str
    source_key: str
    title: str
    chunk_index: int
    page: int | None
    heading_path: list[str]
    text: str
    char_start: int
    char_end: int
    metadata: dict[str, str]
    scores: HitScores


class SearchResultList(BaseModel):
    object: Literal["list"] = "list"
    data: list[SearchResult]  # best first
    model: str  # the embedding model the index and the query vectors come from
    mode: SearchMode


@router.post("/v1/search", response_model=SearchResultList, responses=error_responses(400, 401, 403, 429, 503))
async def search(
    request: SearchRequest,
    principal: CurrentPrincipal,
    store: Annotated[VectorStore, Depends(vector_store)],
    embedder: Annotated[QueryEmbedder, Depends(query_embedder)],
    limiter: Annotated[RateLimiter, Depends(rate_limiter)],
    settings: Annotated[Settings, Depends(get_settings)],
) -> JSONResponse:
    """The tenant's ``k`` best chunks for ``query``, best first, with their scores."""
    hits, headers = await run_in_threadpool(_search, request, principal, store, embedder, limiter)
    body = SearchResultList(
        data=[_result(hit, request.mode) for hit in hits], model=settings.embedding_endpoint, mode=request.mode
    )
    return JSONResponse(body.model_dump(mode="json"), headers=headers)


def _search(
    request: SearchRequest,
    principal: Principal,
    store: VectorStore,
    embedder: QueryEmbedder,
    limiter: RateLimiter | None,
) -> tuple[list[SearchHit], dict[str, str]]:
    """Admit (one request, and the query's tokens when it is embedded), embed, search, settle."""
    embeds = request.mode is not SearchMode.KEYWORD
    tokens = count_tokens([request.query]) if embeds else 0
    reservation = None
    if limiter is not None:
        reservation = limiter.admit(
            tenant=principal.tenant,
            key_id=principal.key_id,
            key_limits=principal.key_limits,
            tenant_limits=principal.tenant_limits,
            tokens=tokens,
        )
    used = 0
    try:
        vector = embedder.embed([request.query])[0] if embeds else None
        used = tokens
        hits = store.search(
            tenant=principal.tenant,  # the caller's tenant, never one from the body
            query_text=request.query,
            query_vector=vector,
            k=request.k,
            mode=request.mode,
            document_ids=request.document_ids,
            filters=request.filters,
        )
    finally:
        if reservation is not None:
            reservation.settle(used)  # a failed embedding charges no tokens
    return hits, reservation.headers if reservation is not None else {}


def _result(hit: SearchHit, mode: SearchMode) -> SearchResult:
    # SearchHit has one ``score`` (the mode's), the cosine ``similarity`` and, where the store
    # says it, the BM25 part (``keyword_score``).
    keyword = hit.keyword_score
    if keyword is None and mode is SearchMode.KEYWORD:
        keyword = hit.score
    return SearchResult(
        document_id=hit.document_id,
        source_key=hit.source_key,
        title=hit.title,
        chunk_index=hit.chunk_index,
        page=hit.page,
        heading_path=hit.heading_path,
        text=hit.text,
        char_start=hit.char_start,
        char_end=hit.char_end,
        metadata=hit.metadata,
        scores=HitScores(keyword=keyword, vector=hit.similarity, fused=hit.score),
    )
