"""Retrieval for a question: embed it, search the tenant's chunks, then optionally re-rank the
candidates and drop near-copies (MMR) before keeping ``k``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from strata.retrieval.base import MAX_K, VectorStore
from strata.retrieval.mmr import mmr_select
from strata.retrieval.rerank import HttpReranker, Reranker, RerankError
from strata.retrieval.types import SearchHit, SearchMode

if TYPE_CHECKING:
    from strata.config.settings import Settings

logger = logging.getLogger(__name__)

DEFAULT_CANDIDATES = 20


class QueryEmbedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Retriever:
    """Search, then the optional post-search stages.

    Parameters
    ----------
    store, embedder
        Where the chunks are, and the model that embeds the question (not called in keyword mode).
    mmr_lambda
        Turns on MMR over the candidates (see :mod:`strata.retrieval.mmr`); None leaves the order alone.
    reranker
        Re-orders the candidates first; when it fails the search's own order is kept (logged),
        so an optional stage never takes the chat down.
    candidates
        Hits searched for when a stage is on (at least ``k``, at most ``MAX_K``): the stages
        need more than ``k`` to choose from.
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: QueryEmbedder,
        *,
        mmr_lambda: float | None = None,
        reranker: Reranker | None = None,
        candidates: int = DEFAULT_CANDIDATES,
    ) -> None:
        if mmr_lambda is not None and not 0.0 <= mmr_lambda <= 1.0:
            raise ValueError(f"mmr_lambda must be in [0, 1] (given {mmr_lambda})")
        if candidates < 1:
            raise ValueError(f"candidates must be at least 1 (given {candidates})")
        self._store = store
        self._embedder = embedder
        self._mmr_lambda = mmr_lambda
        self._reranker = reranker
        self._candidates = candidates

    def search(
        self,
        *,
        tenant: str,
        query: str,
        k: int,
        mode: SearchMode = SearchMode.HYBRID,
        document_ids: Sequence[str] | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> list[SearchHit]:
        # Keyword-only search needs no embedding call.
        vector = self._embedder.embed([query])[0] if mode != SearchMode.KEYWORD else None
        staged = self._mmr_lambda is not None or self._reranker is not None
        depth = min(MAX_K, max(k, self._candidates)) if staged else k
        hits = self._store.search(
            tenant=tenant,
            query_text=query,
            query_vector=vector,
            k=depth,
            mode=mode,
            document_ids=document_ids,
            filters=filters,
        )
        if self._reranker is not None:
            hits = self._reranked(query, hits)
        if self._mmr_lambda is not None:
            hits = mmr_select(hits, k, self._mmr_lambda)
        return hits[:k]

    def _reranked(self, query: str, hits: list[SearchHit]) -> list[SearchHit]:
        assert self._reranker is not None
        try:
            return self._reranker.rerank(query, hits)
        except RerankError as error:
            logger.warning("re-ranking skipped, keeping the search order: %s", error)
            return hits


def build_retriever(settings: Settings, store: VectorStore, embedder: QueryEmbedder) -> Retriever:
    """The retriever ``settings`` describe: ``rerank_url``, ``retrieval_mmr_lambda``,
    ``retrieval_candidates``."""
    reranker = HttpReranker(settings.rerank_url, timeout_s=settings.rerank_timeout_s) if settings.rerank_url else None
    return Retriever(
        store,
        embedder,
        mmr_lambda=settings.retrieval_mmr_lambda,
        reranker=reranker,
        candidates=settings.retrieval_candidates,
    )
