"""One chat interaction as the operations loop reads it back: what was asked, what was found,
what was answered, how sure and how fast, and what it cost."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

# Bumped when a field changes meaning; readers skip records of a newer schema than they know.
SCHEMA_VERSION = 1


class RetrievedChunk(BaseModel):
    """One source the answer was given, with the scores that ranked it."""

    model_config = ConfigDict(frozen=True)

    document_id: str
    chunk_index: int
    source_key: str = ""
    score: float  # the search mode's own score (hybrid: fused and normalized per query)
    similarity: float | None = None  # cosine to the question: comparable across questions

    @property
    def chunk_id(self) -> str:
        return f"{self.document_id}#{self.chunk_index}"


class LoggedMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: str  # system | user | assistant
    content: str


class Interaction(BaseModel):
    """One ``POST /v1/chat/completions`` turn, written when it settles.

    ``messages`` (what the model was given: the rendered instructions, the conversation, the
    sources next to the question) and ``answer`` are kept so that the log can be read back as
    training examples (``strata export finetune``): the answer is the text as it was sent
    (redacted when the tenant redacts personal data); for such a tenant the question and the
    messages are redacted the same way before they are logged.
    """

    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    request_id: str
    tenant: str
    key_id: str | None = None
    at: datetime  # when the turn settled, UTC
    model: str
    target: str | None = None
    status: str  # ok | error | client_disconnected | rate_limited | invalid_output | stream_broken
    prompt_name: str | None = None
    prompt_version: int | None = None
    question: str = ""  # the latest user message: what retrieval searched for
    messages: list[LoggedMessage] = Field(default_factory=list)
    answer: str | None = None
    retrieved: list[RetrievedChunk] = Field(default_factory=list)
    sources_below_floor: int = 0  # found, but less similar to the question than the relevance floor
    not_in_documents: bool = False
    validation: str | None = None  # "ok", or what the validators changed ("citations_removed,redacted")
    confidence: float | None = None
    cache_hit: bool = False
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Milliseconds: retrieve and assemble are stages; first_token and total run from the turn's start.
    latency_ms: dict[str, float] = Field(default_factory=dict)

    @property
    def top_similarity(self) -> float | None:
        """How well the best source matched the question; None when nothing was searched by vector."""
        values = [chunk.similarity for chunk in self.retrieved if chunk.similarity is not None]
        return max(values) if values else None
