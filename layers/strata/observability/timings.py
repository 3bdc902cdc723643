"""Per-request stage timings, in milliseconds."""

from __future__ import annotations

import time


class Timings:
    """Milliseconds of each stage (``stage``: since the previous mark) and of the turn so far
    (``elapsed``: since the turn began: first token, total)."""

    __slots__ = ("_last", "_start", "marks")

    def __init__(self) -> None:
        self._start = self._last = time.perf_counter()
        self.marks: dict[str, float] = {}

    def stage(self, name: str) -> None:
        now = time.perf_counter()
        self.marks[name] = round((now - self._last) * 1000, 3)
        self._last = now

    def elapsed(self, name: str) -> None:
        self.marks[name] = round((time.perf_counter() - self._start) * 1000, 3)
