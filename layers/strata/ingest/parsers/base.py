"""The contract every parser fulfils, and the small helpers they share.

A parser is one class per file format: the extensions and content types it reads, the largest
file it accepts and a ``parse`` method. The registry picks it; the facade
(:mod:`strata.ingest.parsing`) checks emptiness and size before calling it, so a parser only
turns bytes into pages.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import PurePosixPath
from typing import ClassVar

from strata.ingest.parsers.types import ParsedDocument, Section

MEGABYTE = 1024 * 1024
_MAX_TITLE_CHARS = 300
# Runs of horizontal space, the exotic Unicode ones included (no-break, em, zero-width, ideographic).
SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")


class Parser(ABC):
    """Reads one file format into a :class:`ParsedDocument`.

    ``content_types`` lists the media types it reads, the canonical one first (the one recorded
    for the document); ``extensions`` are lower-case with their dot; ``name`` says what the
    format is in messages to users ("PDF", "Markdown").
    """

    name: ClassVar[str]
    content_types: ClassVar[tuple[str, ...]]
    extensions: ClassVar[tuple[str, ...]]
    max_bytes: ClassVar[int]

    @property
    def content_type(self) -> str:
        return self.content_types[0]

    @abstractmethod
    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        """Turn ``data`` (not empty, within ``max_bytes``) into pages.

        ``charset`` is the one the upload declared, for text formats. Raises
        :class:`~strata.ingest.exceptions.UnreadableDocumentError` when the bytes are not this format.
        """


class HeadingOutline:
    """Builds ``Page.sections`` from headings met in reading order.

    A heading closes every open heading of its level or deeper, so ``heading_path`` is the chain
    of enclosing headings, outermost first. Levels need not be contiguous (an ``h3`` straight
    under an ``h1`` nests under it).
    """

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []
        self._sections: list[Section] = []

    def add(self, level: int, title: str, char_start: int) -> None:
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, title))
        self._sections.append(Section(char_start, self.path))

    @property
    def path(self) -> tuple[str, ...]:
        """The headings the text from now on sits under."""
        return tuple(title for _, title in self._open)

    @property
    def sections(self) -> tuple[Section, ...]:
        return tuple(self._sections)


def file_name(key: str) -> str:
    return key.rstrip("/").rsplit("/", 1)[-1]


def fallback_title(key: str) -> str:
    """The file name without its extension: what to cite a document by when it names no title."""
    name = file_name(key)
    return clean_title(PurePosixPath(name).stem) or clean_title(name) or "Untitled document"


def clean_title(raw: str) -> str:
    return SPACES.sub(" ", " ".join(raw.split())).strip()[:_MAX_TITLE_CHARS]


def reason(exc: BaseException) -> str:
    """A library's error as one short line for a user-facing message."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def format_size(size: int) -> str:
    if size < MEGABYTE:
        return f"{size:,} bytes"
    return f"{size / MEGABYTE:,.1f} MiB".replace(".0 MiB", " MiB")
