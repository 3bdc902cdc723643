"""The two model primitives the server needs, behind small ABCs.

Backends are synchronous and blocking on purpose: the serving layer runs them in worker
threads, so a backend only has to be correct, not async-aware.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from model_endpoint.exceptions import PayloadTooLargeError

__all__ = (
    "ChatBackend",
    "ChatMessage",
    "ChatParams",
    "EmbeddingBackend",
    "FinishReason",
    "GenerationEnd",
    "GenerationEvent",
    "TokenText",
    "Usage",
)

FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class ChatParams:
    """Sampling parameters after validation; ``None`` means "the backend's default"."""

    messages: Sequence[ChatMessage]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: Sequence[str] = field(default_factory=tuple)
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0  # vLLM's and llama.cpp's multiplicative penalty; 1.0 is none
    # Render the assistant header after the messages, so the model starts a new answer.
    add_generation_prompt: bool = True
    # Leave the last (assistant) message open: the model continues its text, and only the new
    # text is generated. Excludes add_generation_prompt.
    continue_final_message: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TokenText:
    """Text the model just produced (usually one token; more when a stop string was pending)."""

    text: str


@dataclass(frozen=True, slots=True)
class GenerationEnd:
    """Always the last event of a generation."""

    finish_reason: FinishReason
    usage: Usage


GenerationEvent = TokenText | GenerationEnd


class ChatBackend(ABC):
    """A chat model that generates text token by token."""

    @property
    @abstractmethod
    def model_name(self) -> str:
        """Name reported in responses (``model``)."""

    @abstractmethod
    def load(self) -> None:
        """Load the weights; blocking, called once from a worker thread at start-up."""

    @abstractmethod
    def generate(self, params: ChatParams, cancelled: threading.Event) -> Iterator[GenerationEvent]:
        """Yield ``TokenText`` events as they are produced, then exactly one ``GenerationEnd``.

        Blocking. Must stop soon after ``cancelled`` is set (finish reason ``"cancelled"``).
        Raises ``ContextLengthExceededError`` before yielding anything when the prompt does
        not fit, so the server can still answer with an HTTP error.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Release the model."""


def reject_too_long(token_counts: Iterable[int], limit: int) -> None:
    """Refuse the first input over ``limit`` tokens (special tokens included), as TEI does when
    truncation is off."""
    for index, count in enumerate(token_counts):
        if count > limit:
            raise PayloadTooLargeError(
                f"input {index} is {count} tokens long; the model accepts at most {limit}. "
                "Shorten it or send `truncate: true`.",
                param="inputs",
            )


class EmbeddingBackend(ABC):
    """A sentence-embedding model."""

    @property
    @abstractmethod
    def model_name(self) -> str: ...

    @property
    @abstractmethod
    def dimensions(self) -> int: ...

    @property
    @abstractmethod
    def max_input_tokens(self) -> int:
        """Inputs longer than this are truncated, or rejected when truncation is off."""

    @abstractmethod
    def load(self) -> None:
        """Load the weights; blocking, called once from a worker thread at start-up."""

    @abstractmethod
    def embed(
        self,
        texts: Sequence[str],
        *,
        normalize: bool,
        truncate: bool,
        truncate_left: bool = False,
    ) -> list[list[float]]:
        """One vector per text. Raises ``PayloadTooLargeError`` for a too-long input if not ``truncate``."""

    def close(self) -> None:  # noqa: B027 - optional hook, most backends need nothing
        """Release the model."""
