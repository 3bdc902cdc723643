"""Stream validators: each sees the answer's text as it streams and may pass, hold back or
rewrite it; ``finish`` releases what was held back and settles the outcome."""

from __future__ import annotations

from abc import ABC
from collections.abc import Iterator, Sequence

from strata.inference import ChatEvent, TextDelta


class StreamValidator(ABC):  # noqa: B024 - every hook has a pass-through default
    name: str = "validator"
    outcome: str = "pending"  # "ok" or what failed, once ``finish`` ran
    stopped: bool = False  # set by ``feed`` to end the answer there: the model is not read further

    def feed(self, text: str) -> str:
        """The text to send on for ``text`` (may be empty while something is held back)."""
        return text

    def finish(self) -> str:
        """Text still held back, sent before the answer ends; sets ``outcome``."""
        self.outcome = "ok"
        return ""


def validated(events: Iterator[ChatEvent], validators: Sequence[StreamValidator]) -> Iterator[ChatEvent]:
    """``events`` with every text delta passed through the validators in order.

    When the stream ends — normally, or because a validator stopped it (which closes ``events``,
    so the upstream stops generating) — ``finish`` releases what was held back. When the
    upstream breaks, the held text is released the same way (redacted, checked) before the
    error goes on: the client gets all of the answer there was, and then the error.
    """
    try:
        for event in events:
            if isinstance(event, TextDelta):
                text = event.text
                for validator in validators:
                    text = validator.feed(text)
                if text:
                    yield TextDelta(text)
                if any(validator.stopped for validator in validators):
                    close = getattr(events, "close", None)
                    if close is not None:
                        close()
                    break
            else:
                yield event
    except Exception:
        tail = _finish(validators)
        if tail:
            yield TextDelta(tail)
        raise
    tail = _finish(validators)
    if tail:
        yield TextDelta(tail)


def _finish(validators: Sequence[StreamValidator]) -> str:
    """What the validators still hold, each one's passed through the ones after it."""
    tail = ""
    for validator in validators:
        tail = validator.feed(tail) if tail else ""
        tail += validator.finish()
    return tail


def outcome_of(validators: Sequence[StreamValidator]) -> str:
    """For the log: "ok", or what the validators changed ("citations_removed,redacted")."""
    return ",".join(v.outcome for v in validators if v.outcome != "ok") or "ok"
