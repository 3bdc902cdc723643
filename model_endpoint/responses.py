"""A streaming response that always runs its cleanup, even if its body never started."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Mapping

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

__all__ = ("ClosingStreamingResponse", "close_response")


class ClosingStreamingResponse(StreamingResponse):
    """``StreamingResponse`` plus an ``on_close`` hook run however the response ends.

    An async generator's ``finally`` only runs once the generator has started; a client that
    leaves before the first chunk is sent would otherwise leave the model generating for no one.
    """

    def __init__(
        self,
        content: AsyncIterable[bytes],
        *,
        on_close: Callable[[], None],
        media_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._on_close = on_close

    def close(self) -> None:
        self._on_close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.close()


def close_response(response: object) -> None:
    """Run a response's cleanup when it is consumed by hand instead of being sent."""
    close = getattr(response, "close", None)
    if callable(close):
        close()
