"""A reservation: what one admitted request holds until its real usage is known."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from strata.throttle.headers import rate_limit_headers
from strata.throttle.lease import DayLease, RateLease
from strata.throttle.store import BucketStore

logger = logging.getLogger(__name__)


class Reservation:
    """``tokens`` reserved from every token bucket (and one request from every request bucket).

    ``settle(tokens_used)`` reconciles the token buckets and the day counter with what the
    request really used: it refunds the difference or charges the extra (which may go past the
    limit: the tokens were used). Refunds and charges go to this instance's leases where they
    can, so settling normally touches no table. Idempotent and thread-safe: only the first call
    counts. A reservation never settled keeps its whole reservation charged.
    """

    __slots__ = ("_clock", "_day", "_headers", "_requests", "_settled", "_store", "_tokens", "tokens")

    _settle_lock = threading.Lock()

    def __init__(
        self,
        *,
        store: BucketStore,
        clock: Callable[[], float],
        tokens: int,
        requests: tuple[RateLease | None, RateLease | None],
        token_leases: tuple[RateLease | None, RateLease | None],
        day: DayLease,
    ) -> None:
        self.tokens = tokens
        self._store = store
        self._clock = clock
        self._requests = requests
        self._tokens = token_leases
        self._day = day
        self._settled = False
        self._headers: dict[str, str] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """OpenAI's ``x-ratelimit-*`` headers as this instance sees the buckets (built once)."""
        if self._headers is None:
            self._headers = rate_limit_headers(self._requests, self._tokens, self._clock())
        return self._headers

    @property
    def settled(self) -> bool:
        return self._settled

    def settle(self, tokens_used: int) -> None:
        if tokens_used < 0:
            raise ValueError(f"tokens_used must be >= 0, got {tokens_used}")
        with self._settle_lock:
            if self._settled:
                return
            self._settled = True
        extra = tokens_used - self.tokens
        if extra == 0:
            return
        now = self._clock()
        store = self._store
        try:
            for lease in self._tokens:
                if lease is not None:
                    with lease.lock:
                        if extra > 0:
                            lease.charge(store, extra, now)
                        else:
                            lease.refund(store, -extra, now)
            day = self._day
            with day.lock:
                if extra > 0:
                    day.charge(store, extra)
                else:
                    day.refund(store, -extra, now)
        except Exception:
            logger.exception("settling a reservation of %d tokens at %d used failed part way", self.tokens, tokens_used)
            raise
