from __future__ import annotations

import functools
import unicodedata
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from functions.api.routes.errors import checked, error_responses
from strata.documents import (
    DocumentRecord,
    DocumentRegistry,
    DocumentUpload,
    DocumentUploads,
    validate_content_type,
    validate_document_path,
)
from strata.documents.uploads import _MEDIA_TYPE, MAX_CONTENT_TYPE_CHARS, MAX_PATH_BYTES, MAX_PATH_CHARS
from strata.ingest import SUPPORTED_EXTENSIONS
from strata.web import CurrentPrincipal, document_registry, document_uploads

router = APIRouter(tags=["documents"])


def _indexable_path(path: str) -> str:
    return validate_document_path(path, extensions=SUPPORTED_EXTENSIONS)


def _char_class(allowed: list[bool]) -> str:
    """A regex character class of the code points ``allowed`` marks, as ranges."""
    ranges, start = [], None
    for point, ok in enumerate([*allowed, False]):
        if ok and start is None:
            start = point
        elif not ok and start is not None:
            ranges.append((start, point - 1))
            start = None

    def char(point: int) -> str:
        return "\\" + chr(point) if chr(point) in "\\[]^-&~|" else chr(point)

    return "[" + "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges) + "]"


@functools.cache
def _path_pattern() -> str:
    """validate_document_path's rules as one regex, built from the same Unicode tables, so the
    schema accepts exactly what the API does: segments of non-control characters (no Unicode
    category C) without '\\', none empty, '.' or '..', none starting or ending with whitespace;
    the last ends in an indexable extension (any case) after a non-empty stem."""
    usable = [not unicodedata.category(chr(point)).startswith("C") and chr(point) != "\\" for point in range(0x110000)]
    inner = _char_class([ok and chr(point) != "/" for point, ok in enumerate(usable)])
    edge_ok = [ok and chr(point) != "/" and not chr(point).isspace() for point, ok in enumerate(usable)]
    edge = _char_class(edge_ok)
    edge_not_dot = _char_class([ok and chr(point) != "." for point, ok in enumerate(edge_ok)])
    # One character but '.'; more, starting with anything but '.'; or '.' then at least one more.
    segment = f"(?:{edge_not_dot}(?:{inner}*{edge})?|\\.(?:{inner}+{edge}|{edge_not_dot}))"
    # PurePosixPath.suffix.lower(): the Kelvin sign lowers to 'k'.
    cased = {"k": "[kK\u212a]"}
    extensions = "|".join(
        "".join(cased.get(c, f"[{c}{c.upper()}]") for c in extension.removeprefix("."))
        for extension in sorted(SUPPORTED_EXTENSIONS)
    )
    return f"^(?:{segment}/)*{edge}{inner}*\\.(?:{extensions})$"


# validate_content_type's pattern with Python's \s spelled out (JSON Schema's \s is another set).
_PYTHON_SPACE = "[" + "".join(f"\\u{point:04x}" for point in range(0x10000) if chr(point).isspace()) + "]"
CONTENT_TYPE_SCHEMA = {
    "type": "string",
    "maxLength": MAX_CONTENT_TYPE_CHARS,
    "pattern": _MEDIA_TYPE.pattern.replace("\\s", _PYTHON_SPACE),
    "description": "A media type such as 'text/plain; charset=utf-8'",
}


def _path_schema(schema: dict[str, Any]) -> None:
    # Built when the document is, not at import: the pattern walks every Unicode code point.
    schema.update(
        minLength=1,
        maxLength=MAX_PATH_CHARS,
        pattern=_path_pattern(),
        description=f"Relative, '/'-separated; at most {MAX_PATH_CHARS} characters and {MAX_PATH_BYTES} bytes in "
        f"UTF-8; the extension one of {', '.join(sorted(SUPPORTED_EXTENSIONS))}",
    )


class UploadRequest(BaseModel):
    """Where the document goes, relative to the tenant's documents (``notes/q3.pdf``)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    path: Annotated[str, checked(_indexable_path), Field(json_schema_extra=_path_schema)]
    # Bound into the upload's policy, so the file must be sent with exactly this type; by default
    # the type the extension is indexed as.
    content_type: Annotated[str, checked(validate_content_type), WithJsonSchema(CONTENT_TYPE_SCHEMA)] | None = None


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
