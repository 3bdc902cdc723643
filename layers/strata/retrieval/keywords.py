"""Free text to keyword terms, and to a safe SQLite FTS5 query.

Both adapters read a keyword query the same way: words are runs of letters and digits, compared
case-insensitively, and English stop words are dropped. The list is Lucene's ``_english_`` stop
set, which the OpenSearch index's analyzer applies too, so a stop-word-only query matches
nothing in either store. Terms are OR-ed (OpenSearch ``match`` does the same by default).
"""

from __future__ import annotations

import re
import unicodedata

# Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, which OpenSearch calls "_english_".
# fmt: off
ENGLISH_STOP_WORDS: frozenset[str] = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
    "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "will", "with",
})
# fmt: on

# Letters and digits only: everything else (quotes, *, :, ^, parentheses, -, +) separates
# words, which is also how the FTS5 unicode61 tokenizer splits text.
_WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 64


def keyword_terms(text: str) -> list[str]:
    """The distinct lower-cased non-stop-word terms of ``text``, in order of appearance."""
    terms: dict[str, None] = {}
    # NFKC first, so a decomposed "é" (e + combining accent) stays one word.
    for match in _WORD.finditer(unicodedata.normalize("NFKC", text).lower()):
        term = match.group()
        if term not in ENGLISH_STOP_WORDS:
            terms.setdefault(term)
        if len(terms) >= MAX_TERMS:
            break
    return list(terms)


def fts5_match_expression(text: str) -> str | None:
    """An FTS5 ``MATCH`` expression that ORs the terms of ``text``, or None when there are none.

    Every term is a double-quoted FTS5 string, so user text can never be read as FTS5 syntax
    (``OR``, ``NEAR(...)``, ``col:``, ``*``, ``^``); the terms hold no double quotes to escape.

    Examples
    --------
    >>> fts5_match_expression('"foo" OR bar* NEAR(')
    '"foo" OR "bar" OR "near"'
    """
    terms = keyword_terms(text)
    if not terms:
        return None
    return " OR ".join(f'"{term}"' for term in terms)
