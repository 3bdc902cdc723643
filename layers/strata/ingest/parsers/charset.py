"""Text decoding shared by every text format (txt, md, html, csv, json).

Rule, first match wins:

1. a UTF-16 byte-order mark: UTF-16;
2. a declared UTF-16 or UTF-32 charset that decodes the bytes (these contain NULs by nature);
3. any NUL byte: rejected as binary (no other text format Strata reads contains NULs);
4. a UTF-8 byte-order mark, or bytes that are valid UTF-8: UTF-8 (the BOM is dropped);
5. the charset the content type declares, when Python knows it and it decodes the bytes;
6. the encoding ``charset-normalizer`` finds most plausible, preferring Windows-1252 among equally
   plausible ones (detectors cannot tell the Western code pages apart on short texts, and
   Windows-1252 is by far the most common of them); when nothing is plausible, Windows-1252 if
   it decodes the bytes (the detector gives up on short texts dense in symbols), else rejected
   as not text.

After decoding, a text with too many control characters is rejected as binary, and line endings
are normalised to ``\\n`` so that paragraph breaks look the same whatever wrote the file.
"""

from __future__ import annotations

import codecs
import logging
import re

from strata.ingest.exceptions import UnreadableDocumentError
from strata.ingest.parsers.base import file_name

logger = logging.getLogger(__name__)

# A real text file has almost no C0 control characters besides tab, newline, CR and form feed.
_CONTROL_CHARS = re.compile(r"[\x01-\x08\x0b\x0e-\x1f\x7f]")
_MAX_CONTROL_RATIO = 0.01
_CONTROL_SAMPLE_CHARS = 1_000_000
_PREFERRED_LEGACY = "cp1252"


def decode_text(data: bytes, *, key: str = "", charset: str | None = None) -> str:
    """Decode text bytes by the rule in the module docstring and normalise line endings."""
    name = file_name(key) if key else "The file"
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
    if charset and _is_wide_unicode(charset) and (text := _try_decode(data, charset)) is not None:
        return text.removeprefix("\ufeff")
    if b"\x00" in data:
        raise UnreadableDocumentError(f"'{name}' contains binary data (NUL bytes), so it is not a text file.", key=key)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if charset and (text := _try_decode(data, charset)) is not None:
        return text
    detected = _detect(data)
    if detected is None:
        raise UnreadableDocumentError(
            f"'{name}' is not text in any character encoding Strata recognises; save it as UTF-8.", key=key
        )
    encoding, text = detected
    logger.debug("decoded %s as %s", key or "text", encoding)
    return text


def _detect(data: bytes) -> tuple[str, str] | None:
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        # The detector gives up on short texts dense in symbols ("5 € – 10 €"); Windows-1252 leaves
        # five byte values undefined, so it still refuses most binary data.
        text = _try_decode(data, _PREFERRED_LEGACY)
        return None if text is None else (_PREFERRED_LEGACY, text)
    tied = [m for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence]
    if any(_PREFERRED_LEGACY in m.could_be_from_charset for m in tied):
        text = _try_decode(data, _PREFERRED_LEGACY)
        if text is not None:
            return _PREFERRED_LEGACY, text
    return best.encoding, str(best)


def _try_decode(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _is_wide_unicode(charset: str) -> bool:
    try:
        return codecs.lookup(charset).name.startswith(("utf-16", "utf-32"))
    except LookupError:
        return False
