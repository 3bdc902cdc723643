"""Errors of the throttle package: one base and one class per way a request is refused."""

from __future__ import annotations

from typing import Literal

LimitName = Literal["requests", "tokens", "tokens_per_day"]
ScopeName = Literal["key", "tenant"]


class ThrottleError(Exception):
    """Base error of the throttle package."""


class RateLimitExceededError(ThrottleError):
    """A limit refused the request (HTTP 429).

    ``retry_after`` is the number of seconds until the request could be admitted (for the daily
    quota: until the next UTC midnight); ``limit`` names the dimension that refused it, ``scope``
    whose limit it was, and ``headers`` carries OpenAI's ``x-ratelimit-*`` headers.
    """

    def __init__(
        self, message: str, *, retry_after: float, limit: LimitName, scope: ScopeName, headers: dict[str, str]
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.limit = limit
        self.scope = scope
        self.headers = headers


class RequestTooLargeError(RateLimitExceededError):
    """The request alone needs more than the limit holds: no wait admits it, it must shrink.

    A subclass of ``RateLimitExceededError`` so that it maps to the same 429 (as OpenAI answers a
    request too large for its TPM limit); ``retry_after`` is the whole window, a hint only.
    """


class BucketContentionError(ThrottleError):
    """A bucket's item kept changing between our conditional writes, try after try: other
    containers are hammering it far beyond what leases should allow. A server-side fault (5xx)."""
