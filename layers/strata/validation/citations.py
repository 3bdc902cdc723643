"""Citations: which numbered sources the answer was given, which of them it cites, and markers
that point at no source, taken out of the stream as it passes.

A marker is ``[n]`` or ``[n, m]``. One split across chunks (``[`` then ``12]``) is held back
until it is whole, with the spaces before it (a few characters at most), so an invalid one
never reaches the client and its removal leaves no double space.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel

from strata.retrieval import SearchHit
from strata.validation.base import StreamValidator

_NUMBER = r"\d{1,3}"
_MARKER = re.compile(rf"\[\s*({_NUMBER}(?:\s*,\s*{_NUMBER})*)\s*\]")
# The tail of a chunk that may still become a marker ("[", "[1", "[1, 2" …), with the spaces
# before it, which go too when it turns out invalid.
_OPEN_MARKER = re.compile(r"[ \t]*(?:\[[\d,\s]{0,16})?$")
_SPACE_BEFORE = re.compile(r"[ \t]+$")


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
    return {int(n) for marker in _MARKER.findall(answer) for n in marker.split(",")}


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
    """Removes markers that point at no source given to the model (``[7]`` of three; from
    ``[1, 7]`` only the 7) and counts them; at the end, names the sources the answer cites."""

    name = "citations"

    def __init__(self, sources: Sequence[SearchHit]) -> None:
        self._sources = sources
        self._pending = ""
        self._answer: list[str] = []
        self.removed = 0
        self.citations: list[Citation] = []

    def feed(self, text: str) -> str:
        text = self._pending + text
        cut = _OPEN_MARKER.search(text).start()  # always matches, at worst the empty tail
        self._pending = text[cut:]
        return self._emit(text[:cut])

    def finish(self) -> str:
        tail, self._pending = self._emit(self._pending), ""
        self.citations = build_citations(self._sources, "".join(self._answer))
        self.outcome = "citations_removed" if self.removed else "ok"
        return tail

    def _emit(self, text: str) -> str:
        out: list[str] = []
        last = 0
        for marker in _MARKER.finditer(text):
            numbers = [n for n in (int(part) for part in marker.group(1).split(",")) if 1 <= n <= len(self._sources)]
            self.removed += marker.group(1).count(",") + 1 - len(numbers)
            before = text[last : marker.start()]
            if numbers:
                out.append(before + "[" + ", ".join(str(n) for n in numbers) + "]")
            else:
                out.append(_SPACE_BEFORE.sub("", before))  # "grass [7]." reads "grass."
            last = marker.end()
        out.append(text[last:])
        emitted = "".join(out)
        self._answer.append(emitted)
        return emitted
