"""Rate limiting and token quotas: per key and tenant, exact across containers, leased locally."""

from strata.throttle.dynamodb import DynamoDBBucketStore
from strata.throttle.exceptions import (
    BucketContentionError,
    RateLimitExceededError,
    RequestTooLargeError,
    ThrottleError,
)
from strata.throttle.headers import format_duration
from strata.throttle.limiter import RateLimiter, build_rate_limiter
from strata.throttle.memory import InMemoryBucketStore
from strata.throttle.reservation import Reservation
from strata.throttle.store import BucketStore, DailyResult, TakeResult
from strata.throttle.types import KeyUsage, Limits, TenantUsage, UsageReport

__all__ = (
    "BucketContentionError",
    "BucketStore",
    "DailyResult",
    "DynamoDBBucketStore",
    "InMemoryBucketStore",
    "KeyUsage",
    "Limits",
    "RateLimitExceededError",
    "RateLimiter",
    "RequestTooLargeError",
    "Reservation",
    "TakeResult",
    "TenantUsage",
    "ThrottleError",
    "UsageReport",
    "build_rate_limiter",
    "format_duration",
)
