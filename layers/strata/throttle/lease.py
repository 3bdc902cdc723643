"""Leases: what one limiter instance took from a bucket at once and admits from locally.

Why the upper bound stays exact. A rate bucket's table state counts ``used`` units (taken and
not refilled, ``(tat - now) / interval``); it refills at ``limit / 60`` units a second. Every
instance keeps ``claim``: the units it took and the table still counts, decayed at that same
rate (the table refills someone's units, so each instance assumes they are its own: the sum of
all claims then never exceeds ``used``). An instance only ever holds ``held <= claim`` unused
units. So all instances together never hold more than the table counts as used, and whatever
they admit from leases was already paid for: over any window the units admitted stay within
``burst + refill``. Giving back ``held`` units (``tat -= held * interval``) can therefore never
credit units the table has already refilled; refunds of admitted units are kept within
``claim`` for the same reason.

Leases grow with demand: a lease starts at what the request needs, and each time one runs out
within ``lease_s`` the next one is eight times as large (capped at ``lease_fraction`` of the limit); one that
expires halves it. A lease expires when it has admitted nothing for ``lease_s`` (or is ten times
that old): a busy one is not handed back and taken again every ``lease_s`` — that cost two table
writes per bucket, all buckets of a key at once, in one unlucky request — and its unused units
decay as the table refills them anyway. Unused units go back on the first call after expiry and
on ``RateLimiter.close``. A day counter leases the same way, without the decay (a quota does not
refill).

Every method here runs under the lease's ``lock``, held by the caller.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass

from strata.throttle.store import BucketStore

logger = logging.getLogger(__name__)

# A per-minute bucket's tolerance: a full minute of burst.
TAU = 60.0
# Units below this are rounding noise, not something to give back.
_EPSILON = 1e-9
# Counting whole units from a float tat near 1.7e9 carries noise of ~2.4e-7 s: a unit counts as
# used until it is 99% refilled, and as free once it is 99% refilled.
_COUNT_SLACK = 0.01
# ...and at a high limit a unit is short (10 µs at 6 million a minute): the slack is at least
# that noise, twice over, in units.
_TAT_NOISE_S = 5e-7
# Without a daily quota nothing can be refused, so a day lease only has to stay small enough for
# other containers' reports: cap it all the same.
_UNBOUNDED_DAY_SLICE = 1 << 20


# How much the next lease grows when one ran out within lease_s: from one unit to the cap of a
# high limit (5% of a million a minute) in six table calls, not sixteen.
_GROWTH = 8
# A lease in use keeps going (a rate lease's units decay as the table refills them anyway); one
# idle for ``lease_s``, or older than this many times it, goes back.
_MAX_AGE = 10


def _expired(lease: RateLease | DayLease, now: float, lease_s: float) -> bool:
    if lease.started is None:
        return False
    idle = lease.used_at is not None and now - lease.used_at >= lease_s
    return idle or now - lease.started >= _MAX_AGE * lease_s


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a lease could not admit: seconds until it could, and what the table counts as used."""

    retry_after: float
    used: int


class _Lease:
    """What both leases share: admitting from the units held, and sizing the next lease."""

    __slots__ = ()
    held: float
    slice: int
    size: float
    cap: int
    started: float | None
    used_at: float | None

    def give_back(self, store: BucketStore) -> None:
        raise NotImplementedError

    def _serve(self, store: BucketStore, n: float, now: float, expired: bool) -> bool:
        if self.held < n:
            return False
        self.held -= n
        self.used_at = now
        if expired:
            self.slice = max(1, self.slice // 2)
            self.give_back(store)
        return True

    def _want(self, deficit: float, now: float, lease_s: float, expired: bool) -> float:
        if expired:  # a lease that sat unused this long was too large: take only what is needed now
            self.slice = max(1, self.slice // 2)
            return deficit
        if self.started is not None and now - self.started < lease_s:  # it ran out quickly: grow
            self.slice = min(self.cap, max(self.slice, int(self.size)) * _GROWTH)
        return max(deficit, min(self.slice, self.cap))


class RateLease(_Lease):
    """This instance's share of one per-minute bucket (GCRA cell in the table)."""

    __slots__ = (
        "bucket",
        "cap",
        "claim",
        "held",
        "interval",
        "limit",
        "lock",
        "retired",
        "size",
        "slack",
        "slice",
        "started",
        "tat",
        "tolerance",
        "updated",
        "used_at",
    )

    def __init__(self, bucket: str, limit: int, lease_fraction: float) -> None:
        self.bucket = bucket
        self.limit = limit
        self.interval = TAU / limit
        # A thousandth of a unit of slack: decimal rounding of the emission interval must not
        # refuse the last unit of a burst. It can never add up to a whole unit admitted.
        self.tolerance = TAU + self.interval * 1e-3
        self.slack = max(_COUNT_SLACK, _TAT_NOISE_S / self.interval)
        self.cap = max(1, int(limit * lease_fraction))
        self.lock = threading.Lock()
        self.claim = 0.0  # units taken by this instance that the table still counts as used
        self.held = 0.0  # of those, units not admitted (the lease)
        self.updated = 0.0  # when claim was last decayed
        self.started: float | None = None  # when the current lease was taken
        self.used_at: float | None = None  # when it last admitted
        self.size = 0  # units taken into the current lease
        self.slice = 1  # the size the next lease asks for
        self.tat = 0.0  # the table's tat as of this instance's last write
        self.retired = False  # replaced (new limit) or closed: settle straight to the table

    def _decay(self, now: float) -> None:
        elapsed = now - self.updated
        if elapsed <= 0:
            return  # the clock stepped back: keep the larger claim, never invent units
        self.updated = now
        if self.claim > 0:
            claim = self.claim - elapsed / self.interval
            if claim < 0:
                claim = 0.0
            self.claim = claim
            if self.held > claim:
                self.held = claim

    def take(self, store: BucketStore, n: int, now: float, lease_s: float) -> Refusal | None:
        """Admit ``n`` units (``n <= limit``): from the lease when it can, else from the table."""
        self._decay(now)
        expired = _expired(self, now, lease_s)
        if self._serve(store, n, now, expired):
            return None
        deficit = math.ceil(n - self.held - _EPSILON)
        want = self._want(deficit, now, lease_s, expired)
        result = store.take(self.bucket, want * self.interval, now=now, tau=self.tolerance)
        if not result.granted and want > deficit:
            # The table cannot give the slice: ask for exactly what this request needs, so that
            # the whole burst stays reachable.
            want = deficit
            result = store.take(self.bucket, want * self.interval, now=now, tau=self.tolerance)
        self.tat = result.tat
        if not result.granted:
            retry_after = result.tat + deficit * self.interval - TAU - now
            used = math.ceil(max(result.tat - now, 0.0) / self.interval - self.slack)
            return Refusal(retry_after=max(retry_after, 0.001), used=used)
        self.claim += want
        self.held += want - n
        self.size = want
        self.started = self.used_at = now
        if self.retired:
            self.give_back(store)
        return None

    def refund(self, store: BucketStore, n: float, now: float) -> None:
        """Units admitted but not used go back to the lease, only as far as the table still
        counts them (what it has refilled already is not this instance's to give)."""
        self._decay(now)
        room = self.claim - self.held
        if room > 0:
            self.held += min(float(n), room)
            if self.started is None:
                self.started = self.used_at = now
        if self.retired:
            self.give_back(store)

    def charge(self, store: BucketStore, n: float, now: float) -> None:
        """Units used beyond the reservation: from the lease first, the rest from the table
        unconditionally (they were used; the bucket may go past its limit)."""
        self._decay(now)
        from_lease = min(self.held, float(n))
        self.held -= from_lease
        rest = n - from_lease
        if rest > _EPSILON:
            self.tat = store.take(self.bucket, rest * self.interval, now=now, tau=None).tat
            self.claim += rest

    def give_back(self, store: BucketStore) -> None:
        """Return the unused units to the table. A failure only wastes them (they refill),
        so it is logged, never raised into the request that happened to trigger it."""
        held = self.held
        self.held = 0.0
        self.started = self.used_at = None
        if held <= _EPSILON:
            return
        self.claim -= held
        self.tat -= held * self.interval
        try:
            store.give_back(self.bucket, held * self.interval)
        except Exception:
            logger.warning("could not give back %.3f units to rate bucket %s", held, self.bucket, exc_info=True)

    def consumed(self, table_tat: float | None, now: float) -> int:
        """Units used in the table's window, less what this instance holds unused."""
        self._decay(now)
        used = 0.0 if table_tat is None else max(table_tat - now, 0.0) / self.interval
        return max(0, math.ceil(used - self.held - self.slack))

    def remaining(self, now: float) -> tuple[int, float]:
        """What this instance could still admit, and seconds until the bucket is full, as of its
        last look at the table (others' takes since are unseen)."""
        self._decay(now)
        ahead = max(self.tat - now, 0.0)
        free = (TAU - ahead) / self.interval + self.held
        return max(0, min(self.limit, math.floor(free + self.slack))), max(0.0, ahead - self.held * self.interval)


class DayLease(_Lease):
    """This instance's share of one tenant's token counter for one UTC day."""

    __slots__ = (
        "bucket",
        "cap",
        "day",
        "expires_at",
        "held",
        "lock",
        "quota",
        "retired",
        "size",
        "slice",
        "started",
        "used_at",
    )

    def __init__(self, bucket: str, day: int, quota: int | None, lease_fraction: float) -> None:
        self.bucket = bucket
        self.day = day  # days since the epoch (UTC)
        self.quota = quota
        self.expires_at = (day + 3) * 86_400
        self.cap = _UNBOUNDED_DAY_SLICE if quota is None else max(1, int(quota * lease_fraction))
        self.lock = threading.Lock()
        self.held = 0  # tokens added to the counter and not admitted yet
        self.started: float | None = None
        self.used_at: float | None = None
        self.size = 0
        self.slice = 1
        self.retired = False

    def take(self, store: BucketStore, n: int, now: float, lease_s: float) -> Refusal | None:
        expired = _expired(self, now, lease_s)
        if self._serve(store, n, now, expired):
            return None
        deficit = n - self.held
        want = self._want(deficit, now, lease_s, expired)
        result = store.add_daily(self.bucket, want, quota=self.quota, expires_at=self.expires_at)
        if not result.granted and want > deficit:
            want = deficit
            result = store.add_daily(self.bucket, want, quota=self.quota, expires_at=self.expires_at)
        if not result.granted:
            return Refusal(retry_after=max((self.day + 1) * 86_400 - now, 0.001), used=result.used)
        self.held += want - n
        self.size = want
        self.started = self.used_at = now
        if self.retired:
            self.give_back(store)
        return None

    def refund(self, store: BucketStore, n: int, now: float) -> None:
        self.held += n
        if self.started is None:
            self.started = self.used_at = now
        if self.retired:
            self.give_back(store)

    def charge(self, store: BucketStore, n: int) -> None:
        from_lease = min(self.held, n)
        self.held -= from_lease
        if n > from_lease:
            store.add_daily(self.bucket, n - from_lease, quota=None, expires_at=self.expires_at)

    def give_back(self, store: BucketStore) -> None:
        held = self.held
        self.held = 0
        self.started = self.used_at = None
        if held <= 0:
            return
        try:
            store.add_daily(self.bucket, -held, quota=None, expires_at=self.expires_at)
        except Exception:
            # Unlike a rate bucket this one does not refill: the report overstates today's
            # tokens by ``held`` until the day ends. Never fail a request over it.
            logger.warning("could not give back %d tokens to day counter %s", held, self.bucket, exc_info=True)

    def consumed(self, table_used: float | None) -> int:
        return max(0, int(table_used or 0) - self.held)
