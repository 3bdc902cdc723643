"""``/v1/keys``: a tenant's admins create, list, change and revoke the tenant's own API keys.

Every route works on ``principal.tenant`` only: another tenant's key id is a 404, whatever it is.
A key can be given only scopes the caller's own key has, so an admin cannot mint more power
than it holds.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from annotated_types import Ge
from fastapi import APIRouter, Depends, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictStr, field_validator

from functions.api.routes.errors import error_responses
from strata.auth import ApiKeyStore, KeyRecord, PermissionDeniedError, Principal
from strata.chat.protocol import integer
from strata.config import Scope
from strata.throttle.types import Limits
from strata.web import CurrentPrincipal, key_store

router = APIRouter(tags=["keys"])

Keys = Annotated[ApiKeyStore, Depends(key_store)]


Name = Annotated[StrictStr, Field(max_length=100)]
PerMinute = integer(Ge(1))


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = ""
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.CHAT])
    rpm: PerMinute | None = Field(default=None, description="requests per minute for this key (none: unlimited)")
    tpm: PerMinute | None = Field(default=None, description="tokens per minute for this key (none: unlimited)")
    expires_at: AwareDatetime | None = None

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value


class KeyUpdate(BaseModel):
    """Only the fields sent change; ``"rpm": null`` removes that limit."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    scopes: list[Scope] | None = None
    rpm: PerMinute | None = None
    tpm: PerMinute | None = None


class ApiKey(BaseModel):
    """A key as listed: everything but its secret, which is never stored."""

    object: Literal["api_key"] = "api_key"
    id: str
    tenant: str
    name: str
    scopes: list[Scope]
    rpm: int | None
    tpm: int | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, record: KeyRecord) -> ApiKey:
        return cls(
            id=record.key_id,
            tenant=record.tenant,
            name=record.name,
            scopes=sorted(record.scopes),
            rpm=record.limits.requests_per_minute,
            tpm=record.limits.tokens_per_minute,
            created_at=record.created_at,
            expires_at=record.expires_at,
            revoked_at=record.revoked_at,
        )


class KeyCreated(BaseModel):
    """The new key's secret, shown this once, and its record."""

    secret: str
    key: ApiKey


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ApiKey]


def _grantable(principal: Principal, scopes: list[Scope]) -> frozenset[Scope]:
    wanted = frozenset(scopes)
    beyond = wanted - principal.scopes
    if beyond:
        raise PermissionDeniedError(f"this key cannot grant scopes it does not have: {', '.join(sorted(beyond))}")
    return wanted


@router.post(
    "/v1/keys",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403),
    summary="Create an API key for the caller's tenant",
)
def create_key(body: KeyCreate, principal: CurrentPrincipal, keys: Keys) -> KeyCreated:
    issued = keys.create(
        principal.tenant,
        name=body.name,
        scopes=_grantable(principal, body.scopes),
        limits=Limits(requests_per_minute=body.rpm, tokens_per_minute=body.tpm),
        expires_at=body.expires_at,
    )
    return KeyCreated(secret=issued.secret, key=ApiKey.of(issued.record))


@router.get("/v1/keys", responses=error_responses(401, 403), summary="List the caller's tenant's keys")
def list_keys(principal: CurrentPrincipal, keys: Keys) -> KeyList:
    return KeyList(data=[ApiKey.of(record) for record in keys.list(principal.tenant)])


@router.get("/v1/keys/{key_id}", responses=error_responses(401, 403, 404), summary="One of the tenant's keys")
def get_key(key_id: str, principal: CurrentPrincipal, keys: Keys) -> ApiKey:
    return ApiKey.of(keys.get(principal.tenant, key_id))


@router.patch(
    "/v1/keys/{key_id}",
    responses=error_responses(400, 401, 403, 404),
    summary="Rename a key, or change its scopes or limits",
)
def update_key(key_id: str, body: KeyUpdate, principal: CurrentPrincipal, keys: Keys) -> ApiKey:
    sent = body.model_fields_set
    limits = None
    if sent & {"rpm", "tpm"}:
        # Merge over the stored limits: a field left out keeps its value, an explicit null clears it.
        current = keys.get(principal.tenant, key_id).limits
        limits = Limits(
            requests_per_minute=body.rpm if "rpm" in sent else current.requests_per_minute,
            tokens_per_minute=body.tpm if "tpm" in sent else current.tokens_per_minute,
            tokens_per_day=current.tokens_per_day,
        )
    record = keys.update(
        principal.tenant,
        key_id,
        name=body.name,
        scopes=_grantable(principal, body.scopes) if body.scopes is not None else None,
        limits=limits,
    )
    return ApiKey.of(record)


@router.delete(
    "/v1/keys/{key_id}",
    responses=error_responses(401, 403, 404),
    summary="Revoke a key (refused everywhere within the authorizer's 60 s cache)",
)
def revoke_key(key_id: str, principal: CurrentPrincipal, keys: Keys) -> ApiKey:
    return ApiKey.of(keys.revoke(principal.tenant, key_id))
