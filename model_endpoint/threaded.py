"""Bridge a blocking iterator (a backend's token loop) to async code, item by item.

The iterator runs in a worker thread; each item is handed to the event loop as soon as it
exists, so a streamed response sends every token the moment the model produces it.
Cancelling (client gone) sets a ``threading.Event`` the backend checks between tokens.
``on_finish`` runs on the event loop once the worker has let go of the iterator, which is
when the model is really free again (a cancelled generation still runs to its next token).
"""

from __future__ import annotations

import asyncio
import contextlib
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

    def __init__(
        self,
        produce: Callable[[threading.Event], Iterator[T]],
        *,
        on_finish: Callable[[], None] | None = None,
    ) -> None:
        self._produce = produce
        self._on_finish = on_finish
        self._cancelled = threading.Event()
        self._queue: asyncio.Queue[tuple[object, BaseException | None]] | None = None
        self._done = False

    def cancel(self) -> None:
        self._cancelled.set()
        if self._queue is None:  # never started: no worker will ever report the end
            self._finish()

    def _finish(self) -> None:
        on_finish, self._on_finish = self._on_finish, None
        if on_finish is not None:
            on_finish()

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
                try:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()  # a generator holding a lock releases it now, not at GC time
                finally:
                    with contextlib.suppress(RuntimeError):  # loop closed: nothing left to tell
                        loop.call_soon_threadsafe(self._finish)

        loop.run_in_executor(None, work)
