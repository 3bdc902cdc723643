"""Markdown: indexed as written (the markup reads fine to the model), headings as sections.

Headings are ATX (``#`` to ``######``) and setext (a one-line paragraph underlined with ``===``
or ``---``), outside fenced code blocks and a leading YAML front matter block. A section starts
at the beginning of its heading's line, so a chunk that starts with the heading carries it. The
title is the first level-one heading, else the file name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from strata.ingest.parsers.base import MEGABYTE, HeadingOutline, Parser, clean_title, fallback_title
from strata.ingest.parsers.charset import decode_text
from strata.ingest.parsers.types import MARKDOWN, Page, ParsedDocument

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# Lines that cannot be the text of a setext heading: blank, list items, quotes, indented code.
_NOT_SETEXT_TEXT = re.compile(r"^(?:\s*$| {4}|\t| {0,3}(?:[-+*>]|\d{1,9}[.)])(?:[ \t]|$))")


class MarkdownParser(Parser):
    name = "Markdown"
    content_types = (MARKDOWN, "text/x-markdown")
    extensions = (".md", ".markdown")
    max_bytes = 20 * MEGABYTE

    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        text = decode_text(data, key=key, charset=charset)
        outline = HeadingOutline()
        title = None
        for level, heading, start in markdown_headings(text):
            outline.add(level, heading, start)
            if title is None and level == 1:
                title = heading
        page = Page(None, text, outline.sections)
        return ParsedDocument(title=title or fallback_title(key), pages=[page], content_type=MARKDOWN)


def markdown_headings(text: str) -> Iterator[tuple[int, str, int]]:
    """``(level, heading text, offset of its line)`` for each non-empty heading, in order."""
    fence: str | None = None
    candidate: tuple[str, int] | None = None  # the previous line, when it could be a setext heading's text
    block_start = True  # the line starts a new block (after a blank line, a heading or a fence)
    offset = _front_matter_end(text)
    for line in text[offset:].split("\n"):
        start, offset = offset, offset + len(line) + 1
        setext_text, candidate = candidate, None
        if fence is not None:
            if line.lstrip(" ").startswith(fence):
                fence, block_start = None, True
            continue
        if match := _FENCE.match(line):
            fence = match.group(1)
            continue
        if match := _ATX.match(line):
            block_start = True
            if heading := clean_title(match.group(2)):
                yield len(match.group(1)), heading, start
            continue
        if setext_text is not None and (match := _SETEXT.match(line)):
            block_start = True
            yield (1 if match.group(1)[0] == "=" else 2), setext_text[0], setext_text[1]
            continue
        # Only a one-line paragraph: a longer one would make the whole paragraph the heading.
        if block_start and not _NOT_SETEXT_TEXT.match(line) and (heading := clean_title(line)):
            candidate = (heading, start)
        block_start = not line.strip()


def _front_matter_end(text: str) -> int:
    if not text.startswith("---\n"):
        return 0
    end = text.find("\n---\n", 3)
    return 0 if end < 0 else end + len("\n---\n")
