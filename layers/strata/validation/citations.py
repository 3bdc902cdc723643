"""Citations: which numbered sources the answer was given, which of them it cites, and markers
that point at no source, taken out of the stream as it passes.

A marker is ``[n]`` or ``[n, m]``. One split across chunks (``[`` then ``12]``) is held back
until it is whole, with the spaces before it (a few characters at most), so an invalid one
never reaches the client and its removal leaves no double space.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, Field

from strata.retrieval import SearchHit
from strata.validation.base import StreamValidator
from strata.validation.confidence import content_words, support, vocabulary

_NUMBER = r"\d{1,3}"
_MARKER = re.compile(rf"\[\s*({_NUMBER}(?:\s*,\s*{_NUMBER})*)\s*\]")
# The tail of a chunk that may still become a marker ("[", "[1", "[1, 2" …), with the spaces
# before it, which go too when it turns out invalid.
_OPEN_MARKER = re.compile(r"[ \t]*(?:\[[\d,\s]{0,16})?$")
_SPACE_BEFORE = re.compile(r"[ \t]+$")
# A sentence's closing mark(s), then the whitespace (or the answer's end) that proves it closes one.
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
ATTRIBUTION_MIN_SUPPORT = 0.6
ATTRIBUTION_MIN_WORDS = 2


class Citation(BaseModel):
    """A source the answer was given, named the way its owner knows it."""

    index: int  # the [n] marker in the prompt and the answer
    document_id: str
    source_key: str
    title: str
    chunk: int
    page: int | None = None
    # Where in the document: its headings, outermost first (["Setup", "On Linux"]).
    heading_path: list[str] = Field(default_factory=list)
    score: float
    referenced: bool  # the answer contains the [n] marker
    text: str = ""  # the passage itself, as the model was given it (what the page shows for [n])


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
            heading_path=hit.heading_path,
            score=round(hit.score, 6),
            referenced=number in referenced,
            text=hit.text,
        )
        for number, hit in enumerate(sources, start=1)
    ]


class CitationCheck(StreamValidator):
    """Removes markers that point at no source given to the model (``[7]`` of three; from
    ``[1, 7]`` only the 7) and counts them; adds the marker of the best-supporting source to a
    sentence that has none (small models rarely write markers, however they are asked); at the
    end, names the sources the answer cites.

    A sentence is attributed when at least ``ATTRIBUTION_MIN_SUPPORT`` of its content words
    (weighted as the confidence score weighs them) are in one source, and at least
    ``ATTRIBUTION_MIN_WORDS`` of them: "Yes." cites nothing. The marker goes before the
    sentence's closing punctuation, which is held back until the next character shows that it
    closes a sentence ("3.14" does not).
    """

    name = "citations"

    def __init__(self, sources: Sequence[SearchHit], *, attribute: bool = True) -> None:
        self._sources = sources
        self._vocabularies = [vocabulary(hit.text) for hit in sources] if attribute else []
        self._pending = ""
        self._sentence: list[str] = []  # the sentence being written, as emitted
        self._answer: list[str] = []
        self.removed = 0
        self.added = 0
        self.citations: list[Citation] = []

    def feed(self, text: str) -> str:
        text = self._pending + text
        cut = _OPEN_MARKER.search(text).start()  # always matches, at worst the empty tail
        self._pending = text[cut:]
        return self._emit(self._attribute(self._checked(text[:cut]), final=False))

    def finish(self) -> str:
        tail = self._emit(self._attribute(self._checked(self._pending), final=True))
        self._pending = ""
        self.citations = build_citations(self._sources, "".join(self._answer))
        changed = [what for what, n in (("citations_removed", self.removed), ("citations_added", self.added)) if n]
        self.outcome = ",".join(changed) or "ok"
        return tail

    def _checked(self, text: str) -> str:
        """``text`` with the numbers of sources not given taken out of its markers."""
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
        return "".join(out)

    def _attribute(self, text: str, *, final: bool) -> str:
        """``text`` with a marker before each sentence end of an unmarked, supported sentence.
        A closing mark at the very end is held (in ``_pending``) unless the answer ends there."""
        if not self._vocabularies:
            return text
        out: list[str] = []
        last = 0
        for end in _SENTENCE_END.finditer(text):
            if end.end() == len(text) and not final:  # the next character decides: hold it
                self._pending = text[end.start() :] + self._pending
                text = text[: end.start()]
                break
            self._sentence.append(text[last : end.start()])
            out.append(text[last : end.start()] + self._marker_for("".join(self._sentence)) + end.group())
            self._sentence = []
            last = end.end()
        self._sentence.append(text[last:])
        out.append(text[last:])
        return "".join(out)

    def _marker_for(self, sentence: str) -> str:
        if _MARKER.search(sentence):
            return ""
        words = content_words(sentence)
        if len(words) < ATTRIBUTION_MIN_WORDS:
            return ""
        scores = [support(words, known) for known in self._vocabularies]
        best = max(range(len(scores)), key=scores.__getitem__, default=None)
        if best is None or scores[best] < ATTRIBUTION_MIN_SUPPORT:
            return ""
        self.added += 1
        return f" [{best + 1}]"

    def _emit(self, text: str) -> str:
        self._answer.append(text)
        return text
