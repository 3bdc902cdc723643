"""Per-tenant settings: the tenant's rate limits and daily token quota (the tenants table)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from strata import aws
from strata.auth.types import validate_tenant
from strata.throttle.types import Limits

if TYPE_CHECKING:
    from strata.config import Settings


def limits_item(limits: Limits) -> dict[str, int]:
    """A ``Limits`` as a DynamoDB map: only the fields that are set (absent means unlimited)."""
    return limits.model_dump(exclude_none=True)


def limits_from_item(value: Any) -> Limits:
    """The ``Limits`` a stored map holds (DynamoDB numbers come back as ``Decimal``)."""
    return Limits(**{name: int(number) for name, number in (value or {}).items()})


class TenantStore:
    """The tenants table, one item per tenant (partition key ``tenant``). Takes a boto3 Table."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get_limits(self, tenant: str) -> Limits:
        """The tenant's limits; a tenant nobody configured has none (every field unlimited)."""
        item = self._table.get_item(Key={"tenant": validate_tenant(tenant)}).get("Item") or {}
        return limits_from_item(item.get("limits"))

    def set_limits(self, tenant: str, limits: Limits) -> Limits:
        """Replace the tenant's limits as a whole (a ``None`` field becomes unlimited).

        Only the ``limits`` attribute is written, so other per-tenant settings kept in the same
        item survive. Takes effect for a key once the authorizer's cached policy expires (60 s).
        """
        self._table.update_item(
            Key={"tenant": validate_tenant(tenant)},
            UpdateExpression="SET limits = :limits, updated_at = :now",
            ExpressionAttributeValues={":limits": limits_item(limits), ":now": datetime.now(UTC).isoformat()},
        )
        return limits


def build_tenant_store(settings: Settings) -> TenantStore:
    return TenantStore(aws.resource("dynamodb", settings).Table(settings.tenants_table))
