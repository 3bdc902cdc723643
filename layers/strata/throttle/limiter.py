"""The rate limiter: admits each request against its key's and tenant's limits, all or nothing.

Per key and per tenant: a requests-per-minute and a tokens-per-minute bucket (GCRA, burst = the
limit, refill limit/60 a second); per tenant and UTC day: a token counter, with or without a
quota (tokens today are always reportable). One ``RateLimiter`` per process (per Lambda
container), shared by its threads; state lives in a ``BucketStore`` shared by all containers.

Most calls touch no table: each instance leases slices of every bucket (see
``strata.throttle.lease``) and admits from them under a lock per bucket. Leased units are taken
from the table before they are admitted, so the limits hold exactly across containers; the price
is that one container's unused lease counts as used for the others until it goes back (on its
first call after ``lease_s``, or ``close``).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from strata.throttle.exceptions import LimitName, RateLimitExceededError, RequestTooLargeError, ScopeName
from strata.throttle.headers import format_duration, rate_limit_headers
from strata.throttle.lease import DayLease, RateLease, Refusal
from strata.throttle.reservation import Reservation
from strata.throttle.store import BucketStore
from strata.throttle.types import KeyUsage, Limits, TenantUsage, UsageReport

if TYPE_CHECKING:
    from strata.config import Settings

_DAY_S = 86_400
_LABELS: dict[LimitName, str] = {
    "requests": "requests per minute (RPM)",
    "tokens": "tokens per minute (TPM)",
    "tokens_per_day": "tokens per day (TPD)",
}


class _KeyLeases:
    __slots__ = ("requests", "tokens")

    def __init__(self, requests: RateLease | None, tokens: RateLease | None) -> None:
        self.requests = requests
        self.tokens = tokens


class _TenantLeases:
    __slots__ = ("day", "requests", "tokens")

    def __init__(self, requests: RateLease | None, tokens: RateLease | None, day: DayLease) -> None:
        self.requests = requests
        self.tokens = tokens
        self.day = day


def _fits(lease: RateLease | None, limit: int | None) -> bool:
    return lease.limit == limit if lease is not None else limit is None


def _day_bucket(tenant: str, day: int) -> str:
    return f"day#{tenant}#{time.strftime('%Y-%m-%d', time.gmtime(day * _DAY_S))}"


class RateLimiter:
    def __init__(
        self,
        store: BucketStore,
        *,
        lease_fraction: float = 0.05,
        lease_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < lease_fraction <= 1:
            raise ValueError(f"lease_fraction must be in (0, 1], got {lease_fraction}")
        if lease_s <= 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s}")
        self._store = store
        self._fraction = lease_fraction
        self._lease_s = lease_s
        self._clock = clock
        self._lock = threading.Lock()  # guards the two registries below
        self._keys: dict[str, _KeyLeases] = {}
        self._tenants: dict[str, _TenantLeases] = {}

    # -- admission -------------------------------------------------------------------------

    def admit(self, *, tenant: str, key_id: str, key_limits: Limits, tenant_limits: Limits, tokens: int) -> Reservation:
        """Reserve one request and ``tokens`` (prompt tokens + max_tokens) from every bucket of
        the key and the tenant, or none. Raises ``RateLimitExceededError`` (or its subclass
        ``RequestTooLargeError`` when no wait would help)."""
        if tokens < 0:
            raise ValueError(f"tokens must be >= 0, got {tokens}")
        now = self._clock()
        key = self._key_leases(key_id, key_limits)
        ten = self._tenant_leases(tenant, tenant_limits, now)
        self._check_size(tokens, key, ten, tenant=tenant, key_id=key_id)
        steps = (key.requests, ten.requests, key.tokens, ten.tokens, ten.day)
        store, lease_s = self._store, self._lease_s
        step, refusal = 0, None
        try:
            for step, lease in enumerate(steps):  # noqa: B007 - ``step`` tells what to undo
                n = 1 if step < 2 else tokens
                if lease is None or n == 0:
                    continue
                with lease.lock:
                    refusal = lease.take(store, n, now, lease_s)
                if refusal is not None:
                    break
        except BaseException:
            self._undo(steps[:step], tokens, now)
            raise
        if refusal is not None:
            self._undo(steps[:step], tokens, now)
            raise self._refused(refusal, step, tokens, key, ten, tenant=tenant, key_id=key_id, now=now)
        return Reservation(
            store=store,
            clock=self._clock,
            tokens=tokens,
            requests=(key.requests, ten.requests),
            token_leases=(key.tokens, ten.tokens),
            day=ten.day,
        )

    def _undo(self, taken: tuple[RateLease | DayLease | None, ...], tokens: int, now: float) -> None:
        # What the refused request took goes back to the leases, not the table: cheap, and it
        # returns on the next call after lease_s like any unused units.
        for index, lease in enumerate(taken):
            n = 1 if index < 2 else tokens
            if lease is not None and n:
                with lease.lock:
                    lease.refund(self._store, n, now)

    def _check_size(self, tokens: int, key: _KeyLeases, ten: _TenantLeases, *, tenant: str, key_id: str) -> None:
        for lease, scope, who in ((key.tokens, "key", key_id), (ten.tokens, "tenant", tenant)):
            if lease is not None and tokens > lease.limit:
                raise self._too_large(tokens, lease.limit, "tokens", scope, who, key, ten)
        quota = ten.day.quota
        if quota is not None and tokens > quota:
            raise self._too_large(tokens, quota, "tokens_per_day", "tenant", tenant, key, ten)

    def _too_large(
        self, tokens: int, limit: int, name: LimitName, scope: ScopeName, who: str, key: _KeyLeases, ten: _TenantLeases
    ) -> RequestTooLargeError:
        window = "per-minute limit" if name == "tokens" else "daily quota"
        message = (
            f"Request too large for {_LABELS[name]} on {scope} {who}: this request needs {tokens} tokens, "
            f"more than the {window} {limit}. Reduce the prompt or max_tokens."
        )
        return RequestTooLargeError(
            message,
            retry_after=60.0 if name == "tokens" else float(_DAY_S),
            limit=name,
            scope=scope,
            headers=self._headers(key, ten, self._clock()),
        )

    def _refused(
        self,
        refusal: Refusal,
        step: int,
        tokens: int,
        key: _KeyLeases,
        ten: _TenantLeases,
        *,
        tenant: str,
        key_id: str,
        now: float,
    ) -> RateLimitExceededError:
        name: LimitName = ("requests", "requests", "tokens", "tokens", "tokens_per_day")[step]
        scope: ScopeName = "key" if step in (0, 2) else "tenant"
        lease = (key.requests, ten.requests, key.tokens, ten.tokens, ten.day)[step]
        limit = lease.quota if isinstance(lease, DayLease) else lease.limit  # type: ignore[union-attr]
        message = (
            f"Rate limit reached for {_LABELS[name]} on {scope} {key_id if scope == 'key' else tenant}: "
            f"limit {limit}, used {refusal.used}, requested {1 if step < 2 else tokens}. "
            f"Try again in {format_duration(refusal.retry_after)}."
        )
        return RateLimitExceededError(
            message, retry_after=refusal.retry_after, limit=name, scope=scope, headers=self._headers(key, ten, now)
        )

    @staticmethod
    def _headers(key: _KeyLeases, ten: _TenantLeases, now: float) -> dict[str, str]:
        return rate_limit_headers((key.requests, ten.requests), (key.tokens, ten.tokens), now)

    # -- the leases of a key and a tenant --------------------------------------------------

    def _key_leases(self, key_id: str, limits: Limits) -> _KeyLeases:
        leases = self._keys.get(key_id)
        if (
            leases is not None
            and _fits(leases.requests, limits.requests_per_minute)
            and _fits(leases.tokens, limits.tokens_per_minute)
        ):
            return leases
        with self._lock:
            old = self._keys.get(key_id) or _KeyLeases(None, None)
            leases = _KeyLeases(
                self._rate_lease(old.requests, f"key#requests#{key_id}", limits.requests_per_minute),
                self._rate_lease(old.tokens, f"key#tokens#{key_id}", limits.tokens_per_minute),
            )
            self._keys[key_id] = leases
            return leases

    def _tenant_leases(self, tenant: str, limits: Limits, now: float) -> _TenantLeases:
        today = int(now // _DAY_S)
        leases = self._tenants.get(tenant)
        if (
            leases is not None
            and leases.day.day == today
            and leases.day.quota == limits.tokens_per_day
            and _fits(leases.requests, limits.requests_per_minute)
            and _fits(leases.tokens, limits.tokens_per_minute)
        ):
            return leases
        with self._lock:
            old = self._tenants.get(tenant)
            day = old.day if old is not None else None
            if day is None or day.day != today or day.quota != limits.tokens_per_day:
                if day is not None:
                    self._retire(day)
                day = DayLease(_day_bucket(tenant, today), today, limits.tokens_per_day, self._fraction)
            leases = _TenantLeases(
                self._rate_lease(
                    old.requests if old else None, f"tenant#requests#{tenant}", limits.requests_per_minute
                ),
                self._rate_lease(old.tokens if old else None, f"tenant#tokens#{tenant}", limits.tokens_per_minute),
                day,
            )
            self._tenants[tenant] = leases
            return leases

    def _rate_lease(self, old: RateLease | None, bucket: str, limit: int | None) -> RateLease | None:
        if _fits(old, limit):
            return old
        if old is not None:
            # A new limit changes the emission interval: settle the old lease in its own units.
            self._retire(old)
        return None if limit is None else RateLease(bucket, limit, self._fraction)

    def _retire(self, lease: RateLease | DayLease) -> None:
        # Reservations still holding this lease settle straight to the table from now on.
        with lease.lock:
            lease.retired = True
            lease.give_back(self._store)

    # -- reporting and shutdown ------------------------------------------------------------

    def usage(self, *, tenant: str, key_id: str, key_limits: Limits, tenant_limits: Limits) -> UsageReport:
        """The counters of a key and its tenant, exact for this instance (see ``UsageReport``)."""
        now = self._clock()
        key = self._key_leases(key_id, key_limits)
        ten = self._tenant_leases(tenant, tenant_limits, now)
        rates = (key.requests, key.tokens, ten.requests, ten.tokens)
        # Hold the leases while reading, so that no lease of ours moves between the table's
        # numbers and our own. Always in this order; admission never holds two at once.
        with contextlib.ExitStack() as held:
            for lease in (*rates, ten.day):
                if lease is not None:
                    held.enter_context(lease.lock)
            values = self._store.read([lease.bucket for lease in (*rates, ten.day) if lease is not None])
            counts = [None if lease is None else lease.consumed(values.get(lease.bucket), now) for lease in rates]
            today = ten.day.consumed(values.get(ten.day.bucket))
        return UsageReport(
            key=KeyUsage(
                key_id=key_id, requests_this_minute=counts[0], tokens_this_minute=counts[1], limits=key_limits
            ),
            tenant=TenantUsage(
                tenant=tenant,
                requests_this_minute=counts[2],
                tokens_this_minute=counts[3],
                tokens_today=today,
                limits=tenant_limits,
            ),
        )

    def close(self) -> None:
        """Give every lease back (end of a test, of the local stack, of a container's life)."""
        with self._lock:
            leases: list[RateLease | DayLease] = []
            for key in self._keys.values():
                leases += [lease for lease in (key.requests, key.tokens) if lease is not None]
            for ten in self._tenants.values():
                leases += [lease for lease in (ten.requests, ten.tokens, ten.day) if lease is not None]
            self._keys.clear()
            self._tenants.clear()
        for lease in leases:
            self._retire(lease)


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """The limiter on the DynamoDB table ``settings.rate_limits_table``."""
    from strata import aws
    from strata.throttle.dynamodb import DynamoDBBucketStore

    table = aws.resource("dynamodb", settings).Table(settings.rate_limits_table)
    return RateLimiter(
        DynamoDBBucketStore(table),
        lease_fraction=settings.rate_limit_lease_fraction,
        lease_s=settings.rate_limit_lease_s,
    )
