"""Turn the bytes of an uploaded file into titled pages of plain text.

Supported types: plain text (``.txt``), Markdown (``.md``), HTML (``.html``/``.htm``) and PDF.
The type comes from the key's extension when it is a known one (S3 content types are often the
generic ``binary/octet-stream``); otherwise from the content type; otherwise the file is rejected.

Text decoding rule (txt, md, html), first match wins:

1. a UTF-16 byte-order mark: UTF-16;
2. any NUL byte: rejected as binary (no text format Strata reads contains NULs);
3. a UTF-8 byte-order mark, or bytes that are valid UTF-8: UTF-8 (the BOM is dropped);
4. the charset the content type declares, when Python knows it and it decodes the bytes;
5. Windows-1252 (a superset of the printable Latin-1 range), and Latin-1 as the last resort,
   which decodes anything.

After decoding, a text with too many control characters is rejected as binary, and line endings
are normalised to ``\\n`` so that paragraph breaks look the same whatever wrote the file.
Page texts are what the chunker slices: chunk offsets refer to them.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from strata.ingest.exceptions import UnreadableDocumentError, UnsupportedDocumentError

if TYPE_CHECKING:
    from bs4 import BeautifulSoup
    from pypdf import PdfReader

logger = logging.getLogger(__name__)

TEXT = "text/plain"
MARKDOWN = "text/markdown"
HTML = "text/html"
PDF = "application/pdf"

_EXTENSIONS: dict[str, str] = {
    ".txt": TEXT,
    ".text": TEXT,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": HTML,
    ".htm": HTML,
    ".pdf": PDF,
}
_CONTENT_TYPES: dict[str, str] = {
    "text/plain": TEXT,
    "text/markdown": MARKDOWN,
    "text/x-markdown": MARKDOWN,
    "text/html": HTML,
    "application/xhtml+xml": HTML,
    "application/pdf": PDF,
}
SUPPORTED_EXTENSIONS: tuple[str, ...] = tuple(_EXTENSIONS)

# A real text file has almost no C0 control characters besides tab, newline, CR and form feed.
_CONTROL_CHARS = re.compile(r"[\x01-\x08\x0b\x0e-\x1f\x7f]")
_MAX_CONTROL_RATIO = 0.01
_CONTROL_SAMPLE_CHARS = 1_000_000
_MAX_TITLE_CHARS = 300

# HTML: elements whose text is never document content, and elements that break the text flow.
_HTML_DROP = ("script", "style", "nav", "noscript", "template", "head", "svg", "iframe")
_HTML_PARAGRAPHS = (
    "p", "div", "section", "article", "main", "aside", "header", "footer", "blockquote", "pre",
    "table", "ul", "ol", "dl", "figure", "figcaption", "address", "fieldset", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6",
)  # fmt: skip
_HTML_LINES = ("li", "tr", "dt", "dd", "caption")
_HTML_CELLS = ("td", "th")

_MD_HEADING = re.compile(r"^#[ \t]+(.+?)[ \t]*#*[ \t]*$")
_MD_FENCE = re.compile(r"^[ ]{0,3}(```|~~~)")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_BLANK_LINES = re.compile(r"\n{3,}")


@dataclass(frozen=True, slots=True)
class Page:
    """The text of one page; ``number`` is 1-based for paged formats (PDF) and None otherwise."""

    number: int | None
    text: str


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    """A document as text: a title to cite it by and its pages in order."""

    title: str
    pages: list[Page]
    content_type: str

    @property
    def char_count(self) -> int:
        return sum(len(page.text) for page in self.pages)


def parse_document(data: bytes, *, key: str, content_type: str | None = None) -> ParsedDocument:
    """Parse an uploaded file into a :class:`ParsedDocument`.

    Parameters
    ----------
    data
        The file's bytes.
    key
        The object key or file name; its extension picks the parser and its name is the
        fallback title.
    content_type
        The content type the upload declared, if any (parameters such as ``charset`` are read).

    Raises
    ------
    UnsupportedDocumentError
        Neither the extension nor the content type is a supported one.
    UnreadableDocumentError
        The file is empty, binary, damaged, or has no extractable text.

    Examples
    --------
    >>> doc = parse_document(b"# Hello\\n\\nWorld.", key="tenants/acme/notes.md")
    >>> doc.title, doc.pages[0].text
    ('Hello', '# Hello\\n\\nWorld.')
    """
    name = _file_name(key)
    kind = detect_content_type(key, content_type)
    if not data:
        raise UnreadableDocumentError(f"'{name}' is empty (0 bytes).", key=key)
    charset = _declared_charset(content_type)
    if kind == PDF:
        doc = _parse_pdf(data, key=key)
    elif kind == HTML:
        doc = _parse_html(decode_text(data, key=key, charset=charset), key=key)
    elif kind == MARKDOWN:
        doc = _parse_markdown(decode_text(data, key=key, charset=charset), key=key)
    else:
        doc = _parse_plain(decode_text(data, key=key, charset=charset), key=key)
    if not any(page.text.strip() for page in doc.pages):
        raise UnreadableDocumentError(_no_text_message(name, kind), key=key)
    logger.debug("parsed %s as %s: %d pages, %d chars", key, kind, len(doc.pages), doc.char_count)
    return doc


def detect_content_type(key: str, content_type: str | None = None) -> str:
    """The canonical content type Strata parses ``key`` as, or raise :class:`UnsupportedDocumentError`."""
    suffix = PurePosixPath(_file_name(key)).suffix.lower()
    if suffix in _EXTENSIONS:
        return _EXTENSIONS[suffix]
    declared = _media_type(content_type)
    if declared in _CONTENT_TYPES:
        return _CONTENT_TYPES[declared]
    what = f"a '{suffix}' file" if suffix else "a file without an extension"
    declared_note = f" (content type '{declared}')" if declared else ""
    raise UnsupportedDocumentError(
        f"'{_file_name(key)}' is {what}{declared_note}, which Strata cannot read. "
        f"Supported types: {', '.join(SUPPORTED_EXTENSIONS)}.",
        key=key,
    )


def decode_text(data: bytes, *, key: str = "", charset: str | None = None) -> str:
    """Decode text bytes by the rule in the module docstring and normalise line endings."""
    name = _file_name(key) if key else "The file"
    text = _decode(data, name=name, key=key, charset=charset)
    sample = text[:_CONTROL_SAMPLE_CHARS]
    if sample and len(_CONTROL_CHARS.findall(sample)) > _MAX_CONTROL_RATIO * len(sample):
        raise UnreadableDocumentError(
            f"'{name}' looks like a binary file, not text: it is full of control characters.", key=key
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, *, name: str, key: str, charset: str | None) -> str:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UnreadableDocumentError(
                f"'{name}' starts with a UTF-16 marker but is not valid UTF-16 text.", key=key
            ) from exc
    if b"\x00" in data:
        raise UnreadableDocumentError(f"'{name}' contains binary data (NUL bytes), so it is not a text file.", key=key)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    for encoding in (charset, "cp1252"):
        if encoding:
            try:
                return data.decode(encoding)
            except (UnicodeDecodeError, LookupError):
                continue
    return data.decode("latin-1")


def _parse_plain(text: str, *, key: str) -> ParsedDocument:
    return ParsedDocument(title=_fallback_title(key), pages=[Page(None, text)], content_type=TEXT)


def _parse_markdown(text: str, *, key: str) -> ParsedDocument:
    title = _markdown_title(text) or _fallback_title(key)
    return ParsedDocument(title=title, pages=[Page(None, text)], content_type=MARKDOWN)


def _markdown_title(text: str) -> str | None:
    """The first level-1 ATX heading (``# Title``) outside fenced code blocks."""
    in_fence = False
    for line in text.split("\n"):
        if _MD_FENCE.match(line):
            in_fence = not in_fence
            continue
        if not in_fence and (match := _MD_HEADING.match(line)):
            return _clean_title(match.group(1))
    return None


def _parse_html(markup: str, *, key: str) -> ParsedDocument:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title = _html_title(soup) or _fallback_title(key)
    text = _html_text(soup)
    return ParsedDocument(title=title, pages=[Page(None, text)], content_type=HTML)


def _html_title(soup: BeautifulSoup) -> str | None:
    for tag in (soup.title, soup.find("h1")):
        if tag is not None and (title := _clean_title(tag.get_text(" "))):
            return title
    return None


def _html_text(soup: BeautifulSoup) -> str:
    """The visible text, one block element per paragraph, whitespace collapsed."""
    from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction

    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    for node in soup.find_all(string=lambda s: isinstance(s, Comment | Declaration | Doctype | ProcessingInstruction)):
        node.extract()
    for br in soup.find_all("br"):
        br.replace_with("\n")
    # Paragraph breaks survive whitespace collapsing below, so the chunker can cut at them.
    for tag in soup.find_all(_HTML_PARAGRAPHS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    # One side only, so consecutive list items or rows stay single lines, not paragraphs.
    for names, separator in ((_HTML_LINES, "\n"), (_HTML_CELLS, " ")):
        for tag in soup.find_all(names):
            tag.insert_after(separator)
    root = soup.body or soup
    lines = (_SPACES.sub(" ", line).strip() for line in root.get_text().split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _parse_pdf(data: bytes, *, key: str) -> ParsedDocument:
    from pypdf import PdfReader

    name = _file_name(key)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _decrypt_without_password(reader):
            raise UnreadableDocumentError(f"'{name}' is password protected; upload a copy without a password.", key=key)
        page_count = len(reader.pages)
    except UnreadableDocumentError:
        raise
    except Exception as exc:  # pypdf raises many types (PdfReadError, ValueError, KeyError...) on bad input
        raise UnreadableDocumentError(
            f"'{name}' is not a readable PDF file (it may be damaged or incomplete): {_reason(exc)}", key=key
        ) from exc
    pages = [Page(number, _pdf_page_text(reader, number, key)) for number in range(1, page_count + 1)]
    title = _pdf_title(reader) or _fallback_title(key)
    return ParsedDocument(title=title, pages=pages, content_type=PDF)


def _decrypt_without_password(reader: PdfReader) -> bool:
    # Many PDFs are "encrypted" with an empty user password only to restrict printing or copying.
    try:
        return bool(reader.decrypt(""))
    except Exception:
        return False


def _pdf_page_text(reader: PdfReader, number: int, key: str) -> str:
    try:
        text = reader.pages[number - 1].extract_text() or ""
    except Exception as exc:  # one damaged page should not lose the rest of the document
        logger.warning("could not extract text from page %d of %s: %s", number, key, _reason(exc))
        return ""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _pdf_title(reader: PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        raw = metadata.title if metadata is not None else None
    except Exception:
        return None
    title = _clean_title(str(raw)) if raw else None
    return title if title and title.lower() not in {"untitled", "untitled document"} else None


def _no_text_message(name: str, kind: str) -> str:
    if kind == PDF:
        return f"'{name}' has no extractable text. It may be a scanned image; text recognition (OCR) is not supported."
    return f"'{name}' contains no text."


def _fallback_title(key: str) -> str:
    name = _file_name(key)
    return _clean_title(PurePosixPath(name).stem) or _clean_title(name) or "Untitled document"


def _clean_title(raw: str) -> str:
    return _SPACES.sub(" ", " ".join(raw.split())).strip()[:_MAX_TITLE_CHARS]


def _file_name(key: str) -> str:
    return key.rstrip("/").rsplit("/", 1)[-1]


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _declared_charset(content_type: str | None) -> str | None:
    for param in (content_type or "").split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"').lower()
    return None


def _reason(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
