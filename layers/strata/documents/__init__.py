"""The document registry, the ``tenants/{tenant}/{path}`` key convention, and uploads/deletions."""

from strata.documents.exceptions import (
    DocumentNotFoundError,
    DocumentsError,
    InvalidSourceKeyError,
    InvalidUploadError,
)
from strata.documents.factory import build_document_uploads
from strata.documents.keys import (
    TENANT_PREFIX,
    UNATTRIBUTED_TENANT,
    SourceKey,
    document_id_for,
    parse_source_key,
    printable,
    source_key_for,
)
from strata.documents.registry import DocumentRegistry
from strata.documents.types import DocumentRecord, DocumentStatus, DocumentUpload, UploadForm
from strata.documents.uploads import DocumentUploads, content_type_for, validate_content_type, validate_document_path

__all__ = (
    "TENANT_PREFIX",
    "UNATTRIBUTED_TENANT",
    "DocumentNotFoundError",
    "DocumentRecord",
    "DocumentRegistry",
    "DocumentStatus",
    "DocumentUpload",
    "DocumentUploads",
    "DocumentsError",
    "InvalidSourceKeyError",
    "InvalidUploadError",
    "SourceKey",
    "UploadForm",
    "build_document_uploads",
    "content_type_for",
    "document_id_for",
    "parse_source_key",
    "printable",
    "source_key_for",
    "validate_content_type",
    "validate_document_path",
)
