"""A blocking generator (the chat pipeline) read by async code, one worker thread per stream.

The generator runs in one thread from first item to last, and each item reaches the event loop
by ``call_soon_threadsafe`` — not a thread hop per chunk. A bounded buffer holds a fast producer
back when the client reads slowly; ``aclose()`` (the client left) stops the producer before its
next item and closes the generator in its own thread, which closes the upstream stream.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()
_POLL_S = 0.1


class ThreadedStream(Generic[T]):
    def __init__(self, produce: Callable[[], Iterator[T]], *, executor: ThreadPoolExecutor, buffer: int = 64) -> None:
        self._produce = produce
        self._executor = executor
        self._room = threading.BoundedSemaphore(buffer)
        self._stopped = threading.Event()
        self._queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._done = False
        self._worker = self._loop.run_in_executor(executor, self._work)

    def __aiter__(self) -> ThreadedStream[T]:
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        item, error = await self._queue.get()
        if item is _END:
            self._done = True
            if error is not None:
                raise error
            raise StopAsyncIteration
        self._room.release()
        return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        """Stop the producer; returns once the generator is closed (upstream stream included)."""
        self._stopped.set()
        self._done = True
        await asyncio.shield(self._worker)

    def _hand_over(self, item: object, error: BaseException | None = None) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (item, error))
        except RuntimeError:  # the loop is closed (shutdown): nobody is listening any more
            self._stopped.set()

    def _work(self) -> None:
        iterator: Iterator[T] | None = None
        try:
            iterator = self._produce()
            for item in iterator:
                while not self._room.acquire(timeout=_POLL_S):
                    if self._stopped.is_set():
                        return
                if self._stopped.is_set():
                    return
                self._hand_over(item)
        except BaseException as error:  # re-raised in the reader, where it can be answered
            self._hand_over(_END, error)
        else:
            self._hand_over(_END)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
