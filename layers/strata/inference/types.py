"""The typed chat stream every provider speaks: text deltas, usage, a finish reason.

A provider's failure is not an event but an exception from ``strata.inference.exceptions``
raised out of the stream, so a caller cannot mistake a broken stream for a finished one.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "content_filter", "tool_calls", "cancelled"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What a provider is asked: the assembled messages and the sampling parameters.

    ``prefix`` is an answer already sent to the client by a target that failed mid-stream: the
    provider asks its model to continue that assistant text (vLLM's ``continue_final_message``).
    """

    messages: tuple[Message, ...]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    prefix: str = ""

    def continued(self, prefix: str) -> ChatRequest:
        return replace(self, prefix=prefix)


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason


ChatEvent = TextDelta | Usage | Finish


@dataclass(frozen=True, slots=True)
class Completion:
    """A whole answer: what ``complete`` returns and what the response cache keeps."""

    text: str
    finish_reason: FinishReason
    usage: Usage = field(default_factory=Usage)
    target: str = ""  # the alias whose target produced (the end of) the answer
