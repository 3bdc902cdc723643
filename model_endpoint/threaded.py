"""Bridge a blocking iterator (a backend's token loop) to async code, item by item.

The iterator runs in a worker thread; each item is handed to the event loop as soon as it
exists, so a streamed response sends every token the moment the model produces it.
Cancelling (client gone) sets a ``threading.Event`` the backend checks between tokens.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ("ThreadedIterator",)

T = TypeVar("T")

_END = object()


class ThreadedIterator(Generic[T]):
    """Async iterator over ``produce(cancelled)`` run in the loop's default executor.

    Examples
    --------
    >>> events = ThreadedIterator(lambda cancelled: backend.generate(params, cancelled))
    >>> async for event in events: ...
    >>> events.cancel()  # always, e.g. in ``finally``: stops the worker at the next item
    """

    def __init__(self, produce: Callable[[threading.Event], Iterator[T]]) -> None:
        self._produce = produce
        self._cancelled = threading.Event()
        self._queue: asyncio.Queue[tuple[object, BaseException | None]] | None = None
        self._done = False

    def cancel(self) -> None:
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def __aiter__(self) -> ThreadedIterator[T]:
        return self

    async def __anext__(self) -> T:
        if self._done:
            raise StopAsyncIteration
        if self._queue is None:
            self._start()
        assert self._queue is not None
        item, error = await self._queue.get()
        if item is _END:
            self._done = True
            if error is not None:
                raise error
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[object, BaseException | None]] = asyncio.Queue()
        self._queue = queue

        def hand_over(item: object, error: BaseException | None = None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (item, error))
            except RuntimeError:  # loop closed during shutdown: nobody is listening any more
                self._cancelled.set()

        def work() -> None:
            iterator: Iterator[T] | None = None
            try:
                iterator = self._produce(self._cancelled)
                for item in iterator:
                    hand_over(item)
            except BaseException as exc:  # re-raised in the consumer, where it can be answered
                hand_over(_END, exc)
            else:
                hand_over(_END)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()  # a generator holding a lock releases it now, not at GC time

        loop.run_in_executor(None, work)
