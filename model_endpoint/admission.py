"""Bounded admission in front of chat generation.

llama.cpp runs one generation at a time, so every request beyond the running one waits. Without
a bound, a burst piles up hundreds of waiting requests (each holding a connection, and a worker
thread once it starts), every one of them answered minutes late. ``GenerationGate`` lets
``max_running`` generations run and ``max_waiting`` more wait in line; the next one is refused
at once with ``ServerOverloadedError`` (503 + ``Retry-After``), which callers and load balancers
know how to retry elsewhere or later.

A slot is held for as long as the backend's generation runs (not as long as its response is
being sent), so ``wait_idle`` at shutdown means "no generation is using the model".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from model_endpoint.exceptions import ClientClosedRequestError, ServerOverloadedError

__all__ = ("GenerationGate", "GenerationSlot")

# How often a waiting request checks whether its client is still there.
_ABANDON_POLL_S = 0.1


class GenerationSlot:
    """The right to run one generation; ``release`` it exactly when the generation has ended."""

    __slots__ = ("_gate", "_released")

    def __init__(self, gate: GenerationGate) -> None:
        self._gate = gate
        self._released = False

    def release(self) -> None:
        """Idempotent: the end of a generation may be reported from more than one place."""
        if not self._released:
            self._released = True
            self._gate._release()


class GenerationGate:
    """``max_running`` generations at a time, ``max_waiting`` in line, the rest refused.

    Examples
    --------
    >>> gate = GenerationGate(max_running=1, max_waiting=16, retry_after_s=2)
    >>> slot = await gate.acquire(abandoned=request.is_disconnected)  # may raise ServerOverloadedError
    >>> try: ...generate...
    ... finally: slot.release()
    """

    def __init__(self, *, max_running: int, max_waiting: int, retry_after_s: int) -> None:
        if max_running < 1 or max_waiting < 0:
            raise ValueError(f"need max_running >= 1 and max_waiting >= 0, got {max_running}, {max_waiting}")
        self._max_running = max_running
        self._max_waiting = max_waiting
        self._retry_after_s = retry_after_s
        self._running = 0
        self._waiters: list[asyncio.Future[None]] = []  # FIFO: first come, first served
        self._idle: asyncio.Event | None = None

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, *, abandoned: Callable[[], Awaitable[bool]] | None = None) -> GenerationSlot:
        """Wait for a free slot; raise ``ServerOverloadedError`` at once when the line is full.

        ``abandoned`` is polled while waiting: a caller whose client left gives its place up
        instead of holding it until its turn and generating for no one.
        """
        if self._running < self._max_running and not self._waiters:
            return self._grant()
        if len(self._waiters) >= self._max_waiting:
            raise ServerOverloadedError(
                f"the model is busy: {self._running} generation(s) running and {len(self._waiters)} waiting, "
                f"which is the most this server queues; retry in {self._retry_after_s} s",
                retry_after_s=self._retry_after_s,
            )
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(turn)
        try:
            await self._wait_for_turn(turn, abandoned)
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release()  # granted in the same instant we gave up: pass it to the next in line
            else:
                turn.cancel()
                self._waiters.remove(turn)
                self._set_idle_if_idle()
            raise
        return GenerationSlot(self)

    async def wait_idle(self) -> None:
        """Return once nothing runs or waits (call it after new requests are refused)."""
        while self._running or self._waiters:
            if self._idle is None:
                self._idle = asyncio.Event()
            self._idle.clear()
            await self._idle.wait()

    async def _wait_for_turn(self, turn: asyncio.Future[None], abandoned: Callable[[], Awaitable[bool]] | None) -> None:
        while True:
            done, _ = await asyncio.wait({turn}, timeout=_ABANDON_POLL_S if abandoned else None)
            if done:
                return
            if abandoned is not None and await abandoned():
                raise ClientClosedRequestError("the client left while its request waited for the model")

    def _grant(self) -> GenerationSlot:
        self._running += 1
        return GenerationSlot(self)

    def _release(self) -> None:
        self._running -= 1
        self._wake_next()
        self._set_idle_if_idle()

    def _set_idle_if_idle(self) -> None:
        if not self._running and not self._waiters and self._idle is not None:
            self._idle.set()

    def _wake_next(self) -> None:
        while self._running < self._max_running and self._waiters:
            turn = self._waiters.pop(0)
            if not turn.done():
                self._running += 1  # counted now, so no newcomer can overtake the woken waiter
                turn.set_result(None)
