"""Where bucket state lives: a few atomic primitives that every backend implements the same way.

A rate bucket is a GCRA cell: its ``tat`` (theoretical arrival time, float seconds) is how far
its units are spoken for. Taking ``seconds`` of it (units × emission interval) is allowed while
``max(tat, now) + seconds <= now + tau``; the limiter (``strata.throttle.limiter``) owns leases
and arithmetic in units, the store only these conditional writes. A day counter is a plain
``used`` count with a quota.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

# Rate buckets outlive their last write by a day: long enough for any charge past the limit to
# refill, short enough that idle keys do not pile up.
RATE_BUCKET_TTL_S = 86_400

# Stores keep tat as a decimal with nanoseconds: far below any emission interval, well within
# DynamoDB's 38 digits, and free of the float noise of adding small numbers to ~1.7e9.
_QUANTUM = Decimal("1e-9")


def seconds_to_take(seconds: float) -> Decimal:
    """What a take or charge adds to tat. Nearest, not up: rounding up on every take would add
    up and could refuse the last unit of a burst; the limiter's slack covers the rest."""
    return Decimal(seconds).quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)


def seconds_to_give_back(seconds: float) -> Decimal:
    """What a give-back removes from tat: rounded down, never a hair more than was taken."""
    return Decimal(seconds).quantize(_QUANTUM, rounding=ROUND_FLOOR)


def instant(now: float) -> Decimal:
    return Decimal(now).quantize(_QUANTUM, rounding=ROUND_FLOOR)


@dataclass(frozen=True, slots=True)
class TakeResult:
    """Outcome of ``take``: when granted, ``tat`` is the bucket's new tat; when refused, the tat
    that refused it (so the caller can tell how long to wait)."""

    granted: bool
    tat: float


@dataclass(frozen=True, slots=True)
class DailyResult:
    """Outcome of ``add_daily``: ``used`` is the new count when granted, the refusing one if not."""

    granted: bool
    used: int


class BucketStore(ABC):
    """Atomic bucket primitives. Every write is one conditional update: no read-modify-write."""

    @abstractmethod
    def take(self, bucket: str, seconds: float, *, now: float, tau: float | None) -> TakeResult:
        """Advance ``bucket``'s tat by ``seconds`` if ``max(tat, now) + seconds <= now + tau``.

        ``tau=None`` takes unconditionally (a charge for tokens already used, which may go past
        the limit). A missing bucket is full.
        """

    @abstractmethod
    def give_back(self, bucket: str, seconds: float) -> None:
        """Move ``bucket``'s tat back by ``seconds`` (units taken and not used). A tat that ends
        before now just means the bucket is full; a missing bucket is left missing."""

    @abstractmethod
    def add_daily(self, bucket: str, n: int, *, quota: int | None, expires_at: int) -> DailyResult:
        """Add ``n`` (may be negative) to the day counter ``bucket`` if the result stays within
        ``quota`` (``None``: always). ``expires_at`` is the item's TTL, epoch seconds."""

    @abstractmethod
    def read(self, buckets: Sequence[str]) -> dict[str, float]:
        """The number each existing bucket holds: its ``tat`` (rate bucket) or ``used`` (day
        counter). Missing buckets are left out."""
