from __future__ import annotations

import re
from dataclasses import dataclass

from strata.auth.exceptions import InvalidTenantError

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
    """Who is calling: the tenant every query is scoped to, and which key was used."""

    tenant: str
    key_id: str


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly created key. ``secret`` exists only here: it is shown once and never stored."""

    secret: str
    key_id: str
    tenant: str
