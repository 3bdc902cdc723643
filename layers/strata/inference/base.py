"""The provider interface: two primitives, ``stream`` and ``complete``, over the typed chat stream.

Providers only translate: they do not retry, fall back or cache (the router does that once for
all of them), and they turn every failure into one of the package's exceptions, naming the target.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any

from strata.inference.types import ChatEvent, ChatRequest, Completion, Finish, TextDelta, Usage


class ChatProvider(ABC):
    """A chat model behind some API. ``name`` is the registry alias of the target."""

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def stream(self, request: ChatRequest) -> Iterator[ChatEvent]:
        """``TextDelta``s as they come, then ``Usage`` (when the upstream reports it) and one ``Finish``.

        Nothing is sent before the first ``next()``; closing the iterator closes the upstream stream.
        """

    @abstractmethod
    def complete(self, request: ChatRequest) -> Completion:
        """The whole answer in one call."""

    def close(self) -> None:  # noqa: B027 - optional hook: providers holding connections release them
        """Release connections."""


class EmbeddingProvider(ABC):
    name: str

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order."""


def openai_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """The request's messages in OpenAI's shape, the partial answer last as an assistant message."""
    messages: list[dict[str, Any]] = [{"role": m.role, "content": m.content} for m in request.messages]
    if request.prefix:
        messages.append({"role": "assistant", "content": request.prefix})
    return messages


def openai_body(request: ChatRequest, *, stream: bool, model: str | None = None, **defaults: Any) -> dict[str, Any]:
    """An OpenAI chat-completions body (what vLLM, LMI, TGI, llama.cpp server and hosted APIs take)."""
    body: dict[str, Any] = {**defaults, "messages": openai_messages(request), "max_tokens": request.max_tokens}
    if model is not None:
        body["model"] = model
    for name in ("temperature", "top_p", "seed"):
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.stop:
        body["stop"] = list(request.stop)
    if request.prefix:  # vLLM's names: continue the last assistant message, no new turn
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    else:
        body["stream"] = False
    return body


def events_from_openai_chunk(chunk: dict[str, Any]) -> Iterator[ChatEvent]:
    """The typed events inside one OpenAI ``chat.completion.chunk``."""
    for choice in chunk.get("choices") or ():
        text = (choice.get("delta") or {}).get("content")
        if text:
            yield TextDelta(text)
        if choice.get("finish_reason"):
            yield Finish(_finish_reason(choice["finish_reason"]))
    usage = chunk.get("usage")
    if usage:
        yield usage_from_openai(usage)


def completion_from_openai(reply: dict[str, Any], target: str) -> Completion:
    choices = reply.get("choices") or [{}]
    message = choices[0].get("message") or {}
    return Completion(
        text=message.get("content") or "",
        finish_reason=_finish_reason(choices[0].get("finish_reason") or "stop"),
        usage=usage_from_openai(reply.get("usage") or {}),
        target=target,
    )


def usage_from_openai(usage: dict[str, Any]) -> Usage:
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0), completion_tokens=int(usage.get("completion_tokens") or 0)
    )


_FINISH_REASONS = {"stop", "length", "content_filter", "tool_calls", "cancelled"}


def _finish_reason(value: str) -> Any:
    return value if value in _FINISH_REASONS else "stop"


def stream_from_completion(completion: Completion, *, piece_chars: int = 16) -> Iterator[ChatEvent]:
    """A whole answer replayed as a stream (a cache hit asked for with ``stream: true``)."""
    text = completion.text
    start = 0
    while start < len(text):
        # Cut after a space where one is near, so pieces read like tokens.
        end = min(len(text), start + piece_chars)
        space = text.rfind(" ", start + 1, end)
        end = space if space > start and end < len(text) else end
        yield TextDelta(text[start:end])
        start = end
    yield completion.usage
    yield Finish(completion.finish_reason)
