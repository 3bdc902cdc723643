"""Typed shapes that cross the vector-store port."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class SearchMode(StrEnum):
    VECTOR = "vector"
    KEYWORD = "keyword"
    HYBRID = "hybrid"


class ChunkRecord(BaseModel):
    """One chunk of one document, as indexed."""

    tenant: str
    document_id: str
    chunk_index: int = Field(ge=0)
    text: str
    vector: list[float]
    source_key: str
    title: str
    page: int | None = None
    char_start: int = Field(ge=0)
    char_end: int = Field(ge=0)


class SearchHit(BaseModel):
    """A chunk returned by a search, with its score (higher is better)."""

    tenant: str
    document_id: str
    chunk_index: int
    text: str
    source_key: str
    title: str
    page: int | None = None
    char_start: int
    char_end: int
    score: float
    # The query's cosine similarity to the chunk, in [-1, 1], whatever the mode's score: an
    # absolute measure of relevance (hybrid scores are normalized per query, so the best hit of
    # an unrelated query still scores 1.0). None when the search had no query vector.
    similarity: float | None = None
