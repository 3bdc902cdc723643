"""What a limit is: requests and tokens per minute, tokens per day (None: unlimited); what is used."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    requests_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_minute: int | None = Field(default=None, ge=1)
    tokens_per_day: int | None = Field(default=None, ge=1)


class KeyUsage(BaseModel):
    """One key's per-minute windows. A count is None where that dimension has no limit."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    requests_this_minute: int | None
    tokens_this_minute: int | None
    limits: Limits


class TenantUsage(BaseModel):
    """A tenant's per-minute windows and its tokens today (always counted, quota or not)."""

    model_config = ConfigDict(frozen=True)

    tenant: str
    requests_this_minute: int | None
    tokens_this_minute: int | None
    tokens_today: int
    limits: Limits


class UsageReport(BaseModel):
    """What ``RateLimiter.usage`` reports.

    Exact for what this limiter instance admitted and settled. Units that other instances (other
    Lambda containers) hold in unused leases count as used until they go back, at most
    ``lease_s`` after those containers' next call.
    """

    model_config = ConfigDict(frozen=True)

    key: KeyUsage
    tenant: TenantUsage
