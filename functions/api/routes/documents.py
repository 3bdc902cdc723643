from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from strata.documents import DocumentRecord, DocumentRegistry
from strata.web import CurrentPrincipal, document_registry

router = APIRouter(tags=["documents"])


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    data: list[DocumentRecord]


@router.get("/v1/documents")
def list_documents(
    principal: CurrentPrincipal, registry: Annotated[DocumentRegistry, Depends(document_registry)]
) -> DocumentList:
    return DocumentList(data=registry.list(principal.tenant))


@router.get("/v1/documents/{document_id}")
def get_document(
    document_id: str,
    principal: CurrentPrincipal,
    registry: Annotated[DocumentRegistry, Depends(document_registry)],
) -> DocumentRecord:
    return registry.get(principal.tenant, document_id)
