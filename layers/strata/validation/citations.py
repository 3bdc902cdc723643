"""Citations: which numbered sources the answer was given, and which of them it cites."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel

from strata.retrieval import SearchHit
from strata.validation.base import StreamValidator

_MARKER = re.compile(r"\[(\d{1,3})\]")


class Citation(BaseModel):
    """A source the answer was given, named the way its owner knows it."""

    index: int  # the [n] marker in the prompt and the answer
    document_id: str
    source_key: str
    title: str
    chunk: int
    page: int | None = None
    score: float
    referenced: bool  # the answer contains the [n] marker


def referenced_numbers(answer: str) -> set[int]:
    return {int(number) for number in _MARKER.findall(answer)}


def build_citations(sources: Sequence[SearchHit], answer: str) -> list[Citation]:
    referenced = referenced_numbers(answer)
    return [
        Citation(
            index=number,
            document_id=hit.document_id,
            source_key=hit.source_key,
            title=hit.title,
            chunk=hit.chunk_index,
            page=hit.page,
            score=round(hit.score, 6),
            referenced=number in referenced,
        )
        for number, hit in enumerate(sources, start=1)
    ]


class CitationCheck(StreamValidator):
    """Passes the answer through and, at its end, names the sources it cites; a marker that
    points at no source given to the model (``[7]`` of three) makes the outcome
    ``unknown_citation``."""

    name = "citations"

    def __init__(self, sources: Sequence[SearchHit]) -> None:
        self._sources = sources
        self._answer: list[str] = []
        self.citations: list[Citation] = []

    def feed(self, text: str) -> str:
        self._answer.append(text)
        return text

    def finish(self) -> str:
        answer = "".join(self._answer)
        self.citations = build_citations(self._sources, answer)
        unknown = {n for n in referenced_numbers(answer) if not 1 <= n <= len(self._sources)}
        self.outcome = "unknown_citation" if unknown else "ok"
        return ""
