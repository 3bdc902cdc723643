"""Per-tenant settings (the tenants table): rate limits and daily token quota, the tenant's
answer policy (whether personal data in answers is redacted) and how its documents are chunked."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class TenantSettings:
    limits: Limits
    redact_pii: bool = True  # on unless the tenant opted out


class TenantStore:
    """The tenants table, one item per tenant (partition key ``tenant``). Takes a boto3 Table."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, tenant: str) -> TenantSettings:
        """Everything the authorizer needs of a tenant, in one read; a tenant nobody configured
        has no limits and the default policy."""
        item = self._table.get_item(Key={"tenant": validate_tenant(tenant)}).get("Item") or {}
        return TenantSettings(limits=limits_from_item(item.get("limits")), redact_pii=item.get("redact_pii", True))

    def get_limits(self, tenant: str) -> Limits:
        """The tenant's limits; a tenant nobody configured has none (every field unlimited)."""
        return self.get(tenant).limits

    def get_chunking(self, tenant: str) -> tuple[int, int] | None:
        """The tenant's own ``(chunk_tokens, overlap_tokens)``, None for the stack's default."""
        item = self._table.get_item(Key={"tenant": validate_tenant(tenant)}, ProjectionExpression="chunking").get(
            "Item"
        )
        chunking = (item or {}).get("chunking")
        return (int(chunking["tokens"]), int(chunking["overlap"])) if chunking else None

    def set_chunking(self, tenant: str, tokens: int | None, overlap: int = 0) -> None:
        """Chunk the tenant's documents in windows of ``tokens`` (None: the stack's default) with
        ``overlap``; documents ingested from then on use it (re-upload to re-chunk the others)."""
        if tokens is not None and not (16 <= tokens <= 254 and 0 <= overlap < tokens):
            raise ValueError(
                f"chunking needs 16 <= tokens <= 254 and 0 <= overlap < tokens (given {tokens}, {overlap})"
            )
        key = {"tenant": validate_tenant(tenant)}
        now = datetime.now(UTC).isoformat()
        if tokens is None:
            self._table.update_item(
                Key=key,
                UpdateExpression="REMOVE chunking SET updated_at = :now",
                ExpressionAttributeValues={":now": now},
            )
            return
        self._table.update_item(
            Key=key,
            UpdateExpression="SET chunking = :chunking, updated_at = :now",
            ExpressionAttributeValues={":chunking": {"tokens": tokens, "overlap": overlap}, ":now": now},
        )

    def set_pii_redaction(self, tenant: str, enabled: bool) -> None:
        """Switch the redaction of personal data in the tenant's answers (on by default). Takes
        effect once the authorizer's cached policy expires (60 s)."""
        self._table.update_item(
            Key={"tenant": validate_tenant(tenant)},
            UpdateExpression="SET redact_pii = :enabled, updated_at = :now",
            ExpressionAttributeValues={":enabled": enabled, ":now": datetime.now(UTC).isoformat()},
        )

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
