"""HTML: the visible main text, one block element per paragraph, h1–h6 as sections.

Boilerplate goes before the text is read: scripts, styles, navigation, forms, page-level headers
and footers (a ``<header>`` inside an ``<article>`` or ``<main>`` is the article's own, and
kept), asides, hidden elements, ARIA landmarks that are not content, and cookie or consent
banners recognised by their class or id. When the page marks its main content (``<main>`` or
``role="main"``), only that is read. The title is ``<title>``, else the first ``<h1>``, else the
file name.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from strata.ingest.parsers.base import MEGABYTE, SPACES, HeadingOutline, Parser, clean_title, fallback_title
from strata.ingest.parsers.charset import decode_text
from strata.ingest.parsers.types import HTML, Page, ParsedDocument

if TYPE_CHECKING:
    from bs4 import BeautifulSoup, Tag

logger = logging.getLogger(__name__)

# Elements whose text is never document content, and elements that break the text flow.
_DROP = (
    "script", "style", "nav", "noscript", "template", "head", "svg", "iframe", "aside", "form",
    "button", "select", "textarea", "dialog", "menu", "object", "embed", "canvas",
)  # fmt: skip
_PAGE_CHROME = ("header", "footer")
_OWN_CHROME_PARENTS = ("article", "main")
_DROP_ROLES = frozenset(
    {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog", "menu", "menubar"}
)
# Matches class or id tokens such as "cookie-banner", "cookieConsent", "gdpr-notice", "cc-consent".
_BANNER_TOKEN = re.compile(
    r"(?=.*(?:cookie|consent|gdpr))(?=.*(?:banner|notice|bar|popup|modal|dialog|overlay|consent|wall|gdpr))", re.I
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_PARAGRAPHS = (
    "p", "div", "section", "article", "main", "header", "footer", "blockquote", "pre",
    "table", "ul", "ol", "dl", "figure", "figcaption", "address", "fieldset", "hr", "details", "summary",
    "h1", "h2", "h3", "h4", "h5", "h6",
)  # fmt: skip
_LINES = ("li", "tr", "dt", "dd", "caption")
_CELLS = ("td", "th")
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
# Marks where each heading starts; decode_text rejects NULs, so a document cannot contain one.
_MARK = "\x00"
_MARK_SPACE = re.compile(_MARK + r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


class HtmlParser(Parser):
    name = "HTML"
    content_types = (HTML, "application/xhtml+xml")
    extensions = (".html", ".htm")
    max_bytes = 20 * MEGABYTE

    def parse(self, data: bytes, *, key: str, charset: str | None) -> ParsedDocument:
        from bs4 import BeautifulSoup

        markup = decode_text(data, key=key, charset=charset).replace(_MARK, "")
        soup = BeautifulSoup(markup, "html.parser")
        title = _html_title(soup) or fallback_title(key)
        return ParsedDocument(title=title, pages=[_html_page(soup)], content_type=HTML)


def _html_title(soup: BeautifulSoup) -> str | None:
    for tag in (soup.title, soup.find("h1")):
        if tag is not None and (title := clean_title(tag.get_text(" "))):
            return title
    return None


def _html_page(soup: BeautifulSoup) -> Page:
    """The visible text, whitespace collapsed, with a section per heading."""
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    _drop_boilerplate(soup)
    for node in soup.find_all(string=lambda s: isinstance(s, Comment | Declaration | Doctype | ProcessingInstruction)):
        node.extract()
    root = _main_content(soup)
    headings: list[tuple[int, str]] = []
    for tag in root.find_all(_HEADINGS):
        if heading := clean_title(tag.get_text(" ")):
            headings.append((int(tag.name[1]), heading))
            tag.insert(0, _MARK)
    for br in root.find_all("br"):
        br.replace_with("\n")
    # Paragraph breaks survive whitespace collapsing below, so the chunker can cut at them.
    for tag in root.find_all(_PARAGRAPHS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    # One side only, so consecutive list items or rows stay single lines, not paragraphs.
    for names, separator in ((_LINES, "\n"), (_CELLS, " ")):
        for tag in root.find_all(names):
            tag.insert_after(separator)
    lines = (SPACES.sub(" ", line).strip() for line in root.get_text().split("\n"))
    # A heading's text may start on the line after its mark (``<h2>\n Install</h2>``): pull it up.
    marked = _MARK_SPACE.sub(_MARK, _BLANK_LINES.sub("\n\n", "\n".join(lines))).strip()
    return _unmark(marked, headings)


def _drop_boilerplate(soup: BeautifulSoup) -> None:
    for tag in soup.find_all(_DROP):
        tag.decompose()
    for tag in soup.find_all(_PAGE_CHROME):
        if not tag.decomposed and tag.find_parent(_OWN_CHROME_PARENTS) is None:
            tag.decompose()
    for tag in soup.find_all(_is_boilerplate):
        if not tag.decomposed:  # inside a banner dropped just before
            tag.decompose()


def _is_boilerplate(tag: Tag) -> bool:
    if str(tag.get("role", "")).strip().lower() in _DROP_ROLES:
        return True
    if tag.has_attr("hidden") or str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    if _HIDDEN_STYLE.search(str(tag.get("style", ""))):
        return True
    tokens = [*tag.get("class", ()), str(tag.get("id", ""))]
    return any(_BANNER_TOKEN.match(token) for token in tokens if token)


def _main_content(soup: BeautifulSoup) -> Tag | BeautifulSoup:
    mains = soup.find_all("main") or soup.find_all(attrs={"role": "main"})
    if len(mains) == 1 and mains[0].get_text().strip():
        return mains[0]
    return soup.body or soup


def _unmark(marked: str, headings: list[tuple[int, str]]) -> Page:
    """Remove the heading marks, turning each into a section at the offset it stood at."""
    pieces = marked.split(_MARK)
    text = "".join(pieces)
    if len(pieces) - 1 != len(headings):  # never seen; the text matters more than its headings
        logger.warning(
            "HTML heading marks out of step (%d marks, %d headings); no sections", len(pieces) - 1, len(headings)
        )
        return Page(None, text)
    outline = HeadingOutline()
    offset = len(pieces[0])
    for (level, heading), piece in zip(headings, pieces[1:], strict=True):
        outline.add(level, heading, offset)
        offset += len(piece)
    return Page(None, text, outline.sections)
