"""``/v1/limits``: a tenant's admins read and set the tenant's own rate limits and daily quota."""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge
from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from functions.api.routes.errors import error_responses
from strata.auth import TenantStore
from strata.chat.protocol import integer
from strata.throttle.types import Limits
from strata.web import CurrentPrincipal, tenant_store

router = APIRouter(tags=["limits"])

Tenants = Annotated[TenantStore, Depends(tenant_store)]
Positive = integer(Ge(1))


class LimitsUpdate(BaseModel):
    """The tenant's limits as a whole: a field left out (or null) is unlimited."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: Positive | None = None
    tokens_per_minute: Positive | None = None
    tokens_per_day: Positive | None = None


class TenantLimits(BaseModel):
    object: Literal["tenant.limits"] = "tenant.limits"
    tenant: str
    requests_per_minute: int | None
    tokens_per_minute: int | None
    tokens_per_day: int | None

    @classmethod
    def of(cls, tenant: str, limits: Limits) -> TenantLimits:
        return cls(tenant=tenant, **limits.model_dump())


@router.get("/v1/limits", responses=error_responses(401, 403), summary="The caller's tenant's limits")
def get_limits(principal: CurrentPrincipal, tenants: Tenants) -> TenantLimits:
    return TenantLimits.of(principal.tenant, tenants.get_limits(principal.tenant))


@router.put(
    "/v1/limits",
    responses=error_responses(400, 401, 403),
    summary="Replace the caller's tenant's limits (applied within the authorizer's 60 s cache)",
)
def set_limits(body: LimitsUpdate, principal: CurrentPrincipal, tenants: Tenants) -> TenantLimits:
    limits = tenants.set_limits(principal.tenant, Limits(**body.model_dump()))
    return TenantLimits.of(principal.tenant, limits)
