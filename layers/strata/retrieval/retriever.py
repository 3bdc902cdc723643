"""Retrieval for a question: embed it, then search the tenant's chunks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from strata.retrieval.base import VectorStore
from strata.retrieval.types import SearchHit, SearchMode


class QueryEmbedder(Protocol):
    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Retriever:
    def __init__(self, store: VectorStore, embedder: QueryEmbedder) -> None:
        self._store = store
        self._embedder = embedder

    def search(
        self,
        *,
        tenant: str,
        query: str,
        k: int,
        mode: SearchMode = SearchMode.HYBRID,
        document_ids: Sequence[str] | None = None,
    ) -> list[SearchHit]:
        # Keyword-only search needs no embedding call.
        vector = self._embedder.embed([query])[0] if mode != SearchMode.KEYWORD else None
        return self._store.search(
            tenant=tenant, query_text=query, query_vector=vector, k=k, mode=mode, document_ids=document_ids
        )
