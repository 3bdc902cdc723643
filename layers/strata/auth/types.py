from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from strata.auth.exceptions import InvalidTenantError
from strata.config import Scope
from strata.throttle.types import Limits

# Tenants appear in S3 keys (tenants/{tenant}/...), index filters and logs: keep them plain.
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def validate_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidTenantError(
            f"invalid tenant {tenant!r}: use 1-63 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit"
        )
    return tenant


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the tenant every query is scoped to, the key (or JWT subject) used, what it
    may do, and the limits that apply to it — all resolved by the authorizer."""

    tenant: str
    key_id: str
    scopes: frozenset[Scope] = frozenset(Scope)
    key_limits: Limits = field(default_factory=Limits)
    tenant_limits: Limits = field(default_factory=Limits)
    redact_pii: bool = True  # the tenant's choice: personal data in answers is redacted unless it opts out

    def allows(self, scope: Scope | None) -> bool:
        return scope is None or scope in self.scopes

    def context(self) -> dict[str, str]:
        """The authorizer's context for API Gateway (string values only)."""
        return {
            "tenant": self.tenant,
            "key_id": self.key_id,
            "scopes": ",".join(sorted(self.scopes)),
            "limits": json.dumps(
                {
                    "key": self.key_limits.model_dump(exclude_none=True),
                    "tenant": self.tenant_limits.model_dump(exclude_none=True),
                },
                separators=(",", ":"),
            ),
            "redact_pii": "true" if self.redact_pii else "false",
        }

    @classmethod
    def from_context(cls, context: dict[str, Any]) -> Principal:
        """The principal the authorizer put in ``requestContext.authorizer``."""
        limits = json.loads(context.get("limits") or "{}")
        return cls(
            tenant=context["tenant"],
            key_id=context.get("key_id", ""),
            scopes=frozenset(Scope(s) for s in (context.get("scopes") or "").split(",") if s),
            key_limits=Limits(**limits.get("key", {})),
            tenant_limits=Limits(**limits.get("tenant", {})),
            redact_pii=context.get("redact_pii", "true") != "false",
        )


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as listed: everything but its secret (which is never stored)."""

    key_id: str
    tenant: str
    name: str
    scopes: frozenset[Scope]
    limits: Limits
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly created key. ``secret`` exists only here: it is shown once and never stored."""

    secret: str
    record: KeyRecord

    @property
    def key_id(self) -> str:
        return self.record.key_id

    @property
    def tenant(self) -> str:
        return self.record.tenant
