"""The document registry and the ``tenants/{tenant}/{path}`` key convention."""

from strata.documents.exceptions import DocumentNotFoundError, DocumentsError, InvalidSourceKeyError
from strata.documents.keys import TENANT_PREFIX, SourceKey, document_id_for, parse_source_key, source_key_for
from strata.documents.registry import DocumentRegistry
from strata.documents.types import DocumentRecord, DocumentStatus

__all__ = (
    "DocumentNotFoundError",
    "DocumentRecord",
    "DocumentRegistry",
    "DocumentStatus",
    "DocumentsError",
    "InvalidSourceKeyError",
    "SourceKey",
    "TENANT_PREFIX",
    "document_id_for",
    "parse_source_key",
    "source_key_for",
)
