"""Where a document lives: ``tenants/{tenant}/{path}`` in the documents bucket."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from strata.auth import validate_tenant
from strata.config import RESOURCES
from strata.documents.exceptions import InvalidSourceKeyError


@dataclass(frozen=True, slots=True)
class SourceKey:
    key: str
    tenant: str
    path: str

    @property
    def document_id(self) -> str:
        return document_id_for(self.key)

    @property
    def file_name(self) -> str:
        return PurePosixPath(self.path).name


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
MAX_PRINTED_CHARS = 300


def printable(text: str, limit: int = MAX_PRINTED_CHARS) -> str:
    """``text`` safe for a log line or a reason shown to users: control and bidi characters (a
    key may hold any of them) written as ``\\xNN`` / ``\\uNNNN``, and at most ``limit`` characters."""
    escaped = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)
    return escaped if len(escaped) <= limit else escaped[: limit - 1] + "…"


def document_id_for(key: str) -> str:
    """Stable per object key, so a re-upload replaces the document instead of duplicating it."""
    return "doc_" + hashlib.sha256(key.encode()).hexdigest()[:24]


TENANT_PREFIX = RESOURCES.documents_bucket.prefix
# Where the registry records objects that belong to no tenant: no tenant name starts with "_".
UNATTRIBUTED_TENANT = "_unattributed"


def parse_source_key(key: str, prefix: str = TENANT_PREFIX) -> SourceKey:
    if not key.startswith(prefix):
        raise InvalidSourceKeyError(f"object key {key!r} is outside {prefix}{{tenant}}/: it belongs to no tenant")
    tenant, _, path = key[len(prefix) :].partition("/")
    if not path:
        raise InvalidSourceKeyError(f"object key {key!r} names a tenant but no file")
    try:
        validate_tenant(tenant)
    except ValueError as error:
        raise InvalidSourceKeyError(str(error)) from error
    return SourceKey(key=key, tenant=tenant, path=path)


def source_key_for(tenant: str, path: str, prefix: str = TENANT_PREFIX) -> str:
    return f"{prefix}{validate_tenant(tenant)}/{path.lstrip('/')}"
