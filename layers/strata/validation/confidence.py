"""A confidence score in [0, 1]: how much of what the answer says can be found in the sources it
cites.

Token overlap, not embedding similarity, for three reasons: it costs microseconds and no second
call to the embedding endpoint before the answer's last chunk; the small model's errors are
mostly a wrong name, number or date inside an otherwise on-topic sentence, which an embedding
of the sentence barely moves but which is simply absent from the source; and the score can be
explained ("4 of the answer's 5 key words are in source 1").

Each sentence's content words (lowercased, plural ``s`` dropped, stop words skipped) are looked
up in the sources it cites (every given source when it cites none). Numbers weigh three times a
word and capitalised words (names) twice: they are what a wrong answer gets wrong. The score is
the weighted share of the answer's words found. A short answer ("Yes.") says too little to
check, so the question's words are checked with it: "yes" claims what the question asks.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

_MARKER = re.compile(r"\[\s*(\d{1,3}(?:\s*,\s*\d{1,3})*)\s*\]")
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
_TOKEN = re.compile(r"[^\W_]+(?:[.,]\d+)*", re.UNICODE)
MIN_ANSWER_WORDS = 3  # below this the question's words are checked too
NUMBER_WEIGHT = 3.0
NAME_WEIGHT = 2.0

_STOP_WORDS_TEXT = (
    "a an the and or but if then so of in on at to for from by with about as into onto over under "
    "than that this these those it its is are was were be been being am do does did have has had "
    "not no yes can could will would should shall may might must i you he she we they me him her "
    "us them my your his our their what which who whom whose when where why how there here also "
    "very just only some any all each both more most other such own same too s t one"
)
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())


def _normal(word: str) -> str:
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def content_words(text: str) -> dict[str, float]:
    """The content words of ``text`` with their weights."""
    words: dict[str, float] = {}
    for i, match in enumerate(_TOKEN.finditer(text)):
        raw = match.group()
        word = _normal(raw)
        if word in _STOP_WORDS or (len(word) < 2 and not word.isdigit()):
            continue
        if any(c.isdigit() for c in raw):
            weight = NUMBER_WEIGHT
        elif raw[0].isupper() and i > 0:
            weight = NAME_WEIGHT
        else:
            weight = 1.0
        words[word] = max(words.get(word, 0.0), weight)
    return words


@lru_cache(maxsize=1024)  # a chunk is often a source of many answers
def vocabulary(text: str) -> frozenset[str]:
    return frozenset(_normal(match.group()) for match in _TOKEN.finditer(text))


def support(words: dict[str, float], known: frozenset[str]) -> float:
    """The weighted share of ``words`` (``content_words``) found in ``known``."""
    total = sum(words.values())
    return sum(weight for word, weight in words.items() if word in known) / total if total else 0.0


def answer_confidence(answer: str, sources: Sequence[str], *, question: str = "") -> float | None:
    """The support of ``answer`` by ``sources`` (``sources[i]`` is cited as ``[i + 1]``); None
    when there are no sources or nothing in the answer to check."""
    if not sources or not answer.strip():
        return None
    vocabularies = [vocabulary(source) for source in sources]
    everything = frozenset().union(*vocabularies)
    found = total = 0.0
    checked_words = 0
    for sentence in _SENTENCE.findall(answer):
        cited = {int(n) for m in _MARKER.findall(sentence) for n in m.split(",") if 1 <= int(n) <= len(sources)}
        known = frozenset().union(*(vocabularies[n - 1] for n in cited)) if cited else everything
        for word, weight in content_words(_MARKER.sub(" ", sentence)).items():
            checked_words += 1
            total += weight
            found += weight if word in known else 0.0
    if checked_words < MIN_ANSWER_WORDS and question:
        for word, weight in content_words(question).items():
            total += weight
            found += weight if word in everything else 0.0
    return round(found / total, 4) if total else None
