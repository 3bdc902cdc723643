"""Server-sent events over arbitrary byte chunks (SageMaker payload parts split lines anywhere)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

DONE = "[DONE]"


class SSEDecoder:
    """Feed bytes, get the ``data:`` payloads of complete events."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> Iterator[str]:
        self._buffer += data
        while True:
            line, sep, rest = self._buffer.partition(b"\n")
            if not sep:
                return
            self._buffer = rest
            text = line.decode("utf-8").rstrip("\r")
            if text.startswith("data:"):
                yield text[5:].strip()


def iter_sse_json(parts: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """The JSON objects carried by an SSE byte stream, up to ``[DONE]``."""
    decoder = SSEDecoder()
    for part in parts:
        for payload in decoder.feed(part):
            if payload == DONE:
                return
            if payload:
                yield json.loads(payload)


def encode_sse(payload: dict[str, Any] | str, *, event: str | None = None) -> str:
    """One server-sent event; ``event`` names it (clients that only read ``data`` of unnamed
    events, as OpenAI's, must not be sent named ones)."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"event: {event}\ndata: {data}\n\n" if event else f"data: {data}\n\n"
