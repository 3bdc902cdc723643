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
    # The headings the chunk sits under, outermost first (["Installation", "On Linux"]).
    heading_path: list[str] = Field(default_factory=list)
    # The document's own metadata (S3 ``x-amz-meta-*``: title, language, custom keys), on every
    # chunk so that a search can filter on it.
    metadata: dict[str, str] = Field(default_factory=dict)


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
    heading_path: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    # The query's cosine similarity to the chunk, in [-1, 1], whatever the mode's score: an
    # absolute measure of relevance (hybrid scores are normalized per query, so the best hit of
    # an unrelated query still scores 1.0). None when the search had no query vector.
    similarity: float | None = None
    # The chunk's BM25 score for the query, when the keyword part ran and matched it (the
    # embedded store says it in every mode; OpenSearch's hybrid pipeline keeps only the fused one).
    keyword_score: float | None = None
