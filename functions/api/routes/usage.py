from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from strata.throttle import RateLimiter, UsageReport
from strata.web import CurrentPrincipal, rate_limiter

router = APIRouter(tags=["usage"])


@router.get("/v1/usage")
def get_usage(principal: CurrentPrincipal, limiter: Annotated[RateLimiter, Depends(rate_limiter)]) -> UsageReport:
    """The caller's counters and limits: requests and tokens in the current minute (for the key
    and its tenant, where a limit is set), the tenant's tokens today, and every limit."""
    return limiter.usage(
        tenant=principal.tenant,
        key_id=principal.key_id,
        key_limits=principal.key_limits,
        tenant_limits=principal.tenant_limits,
    )
