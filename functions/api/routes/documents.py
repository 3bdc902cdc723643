from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from functions.api.routes.errors import checked, error_responses
from strata.documents import (
    DocumentRecord,
    DocumentRegistry,
    DocumentUpload,
    DocumentUploads,
    validate_content_type,
    validate_document_path,
)
from strata.ingest import SUPPORTED_EXTENSIONS
from strata.web import CurrentPrincipal, document_registry, document_uploads

router = APIRouter(tags=["documents"])


def _indexable_path(path: str) -> str:
    return validate_document_path(path, extensions=SUPPORTED_EXTENSIONS)


class UploadRequest(BaseModel):
    """Where the document goes, relative to the tenant's documents (``notes/q3.pdf``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    path: Annotated[str, checked(_indexable_path)]
    # Bound into the upload's policy, so the file must be sent with exactly this type; by default
    # the type the extension is indexed as.
    content_type: Annotated[str, checked(validate_content_type)] | None = None


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentRecord]


@router.get("/v1/documents", responses=error_responses(401))
def list_documents(
    principal: CurrentPrincipal, registry: Annotated[DocumentRegistry, Depends(document_registry)]
) -> DocumentList:
    return DocumentList(data=registry.list(principal.tenant))


@router.post("/v1/documents", responses=error_responses(400, 401, 403))
def create_upload(
    request: UploadRequest,
    principal: CurrentPrincipal,
    uploads: Annotated[DocumentUploads, Depends(document_uploads)],
) -> DocumentUpload:
    """A presigned S3 POST for the document: send the file there; ingestion starts when it lands."""
    return uploads.presign(principal.tenant, request.path, content_type=request.content_type)


@router.get("/v1/documents/{document_id}", responses=error_responses(401, 404))
def get_document(
    document_id: str,
    principal: CurrentPrincipal,
    registry: Annotated[DocumentRegistry, Depends(document_registry)],
) -> DocumentRecord:
    return registry.get(principal.tenant, document_id)


@router.delete("/v1/documents/{document_id}", responses=error_responses(401, 403, 404))
def delete_document(
    document_id: str,
    principal: CurrentPrincipal,
    uploads: Annotated[DocumentUploads, Depends(document_uploads)],
) -> DocumentRecord:
    """Delete the document's file; the record reads ``deleting`` until its chunks are gone."""
    return uploads.delete(principal.tenant, document_id)
