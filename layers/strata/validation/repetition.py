"""Loop detection: small models fall into repeating a sentence until the token cap. The answer
is cut once a sentence (of three words or more) or a run of ``words`` words comes back a second
time, and the model is stopped, so the tokens are not spent and the client gets the answer it
already has. Nothing is held back for it: the check runs on words already sent, so the answer
keeps at most the one repetition that proved the loop.
"""

from __future__ import annotations

import re

from strata.validation.base import StreamValidator

DEFAULT_LOOP_WORDS = 8  # legitimate answers rarely repeat eight words verbatim
MIN_SENTENCE_WORDS = 3
_WORD = re.compile(r"\S+")


class LoopGuard(StreamValidator):
    name = "loop"

    def __init__(self, words: int = DEFAULT_LOOP_WORDS) -> None:
        self._n = words
        self._words: list[str] = []
        self._seen: set[tuple[str, ...]] = set()
        self._sentence_start = 0  # index in _words of the sentence being written
        self._sentences: set[tuple[str, ...]] = set()
        self._partial = ""  # the last word, until whitespace ends it

    def feed(self, text: str) -> str:
        if self.stopped:
            return ""
        pieces = _WORD.findall(self._partial + text)
        ended = bool(text) and text[-1].isspace()
        self._partial = "" if ended or not pieces else pieces.pop()
        for word in pieces:
            self._words.append(word.lower().strip(".,;:!?\"'()"))
            if self._repeats(ends_sentence=word[-1] in ".!?"):
                self.stopped = True
                self.outcome = "loop_stopped"
                return text
        return text

    def _repeats(self, *, ends_sentence: bool) -> bool:
        if len(self._words) >= self._n:
            gram = tuple(self._words[-self._n :])
            if gram in self._seen:
                return True
            self._seen.add(gram)
        if ends_sentence:
            sentence = tuple(self._words[self._sentence_start :])
            self._sentence_start = len(self._words)
            if len(sentence) >= MIN_SENTENCE_WORDS:
                if sentence in self._sentences:
                    return True
                self._sentences.add(sentence)
        return False

    def finish(self) -> str:
        if not self.stopped:
            self.outcome = "ok"
        return ""
