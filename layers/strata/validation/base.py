"""Stream validators: each sees the answer's text as it streams and may pass, hold back or
rewrite it; ``finish`` releases what was held back and settles the outcome."""

from __future__ import annotations

from abc import ABC
from collections.abc import Iterator, Sequence

from strata.inference import ChatEvent, TextDelta


class StreamValidator(ABC):  # noqa: B024 - every hook has a pass-through default
    name: str = "validator"
    outcome: str = "pending"  # "ok" or what failed, once ``finish`` ran

    def feed(self, text: str) -> str:
        """The text to send on for ``text`` (may be empty while something is held back)."""
        return text

    def finish(self) -> str:
        """Text still held back, sent before the answer ends; sets ``outcome``."""
        self.outcome = "ok"
        return ""


def validated(events: Iterator[ChatEvent], validators: Sequence[StreamValidator]) -> Iterator[ChatEvent]:
    """``events`` with every text delta passed through the validators in order. ``finish`` runs
    only when the stream ends normally: a broken stream is not a validated answer."""
    for event in events:
        if isinstance(event, TextDelta):
            text = event.text
            for validator in validators:
                text = validator.feed(text)
            if text:
                yield TextDelta(text)
        else:
            yield event
    tail = ""
    for validator in validators:
        tail = validator.feed(tail) if tail else ""
        tail += validator.finish()
    if tail:
        yield TextDelta(tail)


def outcome_of(validators: Sequence[StreamValidator]) -> str:
    """One word for the log: "ok", or the first validator's failure."""
    return next((v.outcome for v in validators if v.outcome != "ok"), "ok")
