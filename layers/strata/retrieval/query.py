"""The search query for a conversation: the question, condensed with the turns before it when it
is a follow-up ("In which century?" after "Who wrote Hamlet?").

A rewrite by the model would cost a second model call before the first token, and the small
local model rewrites badly; a follow-up is instead recognised by its words (a pronoun standing
for something said before, or almost no content words of its own) and searched together with
the previous question and the first sentence of the answer to it, which usually names what the
pronoun stands for. Hybrid search then weighs the words of all three.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_MARKER = re.compile(r"\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")
MAX_ANSWER_CHARS = 200

# Words that point back at something said earlier.
_ANAPHORA_TEXT = (
    "it its it's he him his she her hers they them their theirs this that these those there then "
    "one ones former latter same such"
)
_ANAPHORA = frozenset(_ANAPHORA_TEXT.split())
# Words that carry no topic of their own.
_FUNCTION_WORDS_TEXT = (
    "a an the and or but so of in on at to for from by with about as into over than what which who "
    "whom whose when where why how is are was were be been being do does did done can could will "
    "would should shall may might must have has had not no yes please tell me more us you i we my "
    "your our any some all other else also too very much many century year years time ok okay"
)
_FUNCTION_WORDS = _ANAPHORA | frozenset(_FUNCTION_WORDS_TEXT.split())
_FOLLOW_UP_OPENINGS = ("and ", "what about", "how about", "what else", "why ", "how come")
MIN_OWN_CONTENT_WORDS = 2


def is_follow_up(question: str) -> bool:
    words = [word.lower() for word in _WORD.findall(question)]
    if not words:
        return False
    if any(word in _ANAPHORA for word in words):
        return True
    content = [word for word in words if word not in _FUNCTION_WORDS]
    return len(content) < MIN_OWN_CONTENT_WORDS or question.strip().lower().startswith(_FOLLOW_UP_OPENINGS)


def search_query(conversation: Sequence[tuple[str, str]]) -> str:
    """The query to search for the last user message of ``conversation`` (``(role, text)``
    pairs, oldest first); ``""`` when there is no user message."""
    users = [i for i, (role, _) in enumerate(conversation) if role == "user"]
    if not users:
        return ""
    question = conversation[users[-1]][1]
    if len(users) < 2 or not is_follow_up(question):
        return question
    previous = users[-2]
    parts = [conversation[previous][1]]
    answer = next((text for role, text in conversation[previous + 1 : users[-1]] if role == "assistant"), "")
    if answer:
        first_sentence = _SENTENCE_END.split(_MARKER.sub("", answer).strip(), maxsplit=1)[0]
        parts.append(first_sentence[:MAX_ANSWER_CHARS])
    return " ".join([*parts, question])
