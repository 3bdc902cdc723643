"""Document uploads through the API: presigned S3 form posts in, deletions out.

Uploads never pass through the API (API Gateway caps bodies at 10 MB, Lambda at 6 MB): the API
grants a presigned POST for one key under ``tenants/{tenant}/``, the client sends the file straight
to S3, and the ``ObjectCreated`` event drives ingestion. The POST policy, signed with the API's
credentials, pins the bucket, the exact key, the content type and ``content-length-range``, so S3
itself refuses a larger file, another key, or another tenant's prefix. (A presigned PUT cannot
bound the size: S3 only checks a signed ``Content-Length`` when the client sends that exact one.)

A deletion deletes the object; the ``ObjectRemoved`` event then removes the chunks and the
registry record, which reads ``deleting`` until it does.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Collection, Mapping
from pathlib import PurePosixPath
from typing import Any

from strata.documents.exceptions import DocumentNotFoundError, InvalidSourceKeyError, InvalidUploadError
from strata.documents.keys import TENANT_PREFIX, document_id_for, parse_source_key, source_key_for
from strata.documents.registry import DocumentRegistry
from strata.documents.types import DocumentRecord, DocumentStatus, DocumentUpload, UploadForm

logger = logging.getLogger(__name__)

MAX_PATH_CHARS = 512
MAX_KEY_BYTES = 1024  # S3's limit on an object key, in UTF-8 bytes
# Leaves room for tenants/{the longest tenant}/ within MAX_KEY_BYTES.
MAX_PATH_BYTES = 900
MAX_CONTENT_TYPE_CHARS = 200
DEFAULT_EXPIRES_IN_S = 900
# type/subtype (RFC 6838 restricted names), then optional ``; name=value`` parameters.
_MEDIA_TYPE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
    r"(\s*;\s*[A-Za-z0-9!#$&^_.+-]+=(\"[^\"\\]*\"|[A-Za-z0-9!#$&^_.+-]+))*$"
)


def validate_document_path(path: str, *, extensions: Collection[str] | None = None) -> str:
    """``path`` if it can name a document under a tenant's prefix, else :class:`InvalidUploadError`.

    Relative, ``/``-separated, no empty, ``.`` or ``..`` segment, no backslash, no segment that
    starts or ends with whitespace, no control or invisible formatting character (Unicode
    categories C*: a right-to-left override can make ``invoice\\u202etxt.pdf`` read as another file),
    at most 512 characters and 900 UTF-8 bytes; with ``extensions``, its extension must be one of them.
    """
    if not path:
        raise InvalidUploadError("must not be empty", param="path")
    if len(path) > MAX_PATH_CHARS:
        raise InvalidUploadError(f"is {len(path)} characters long; at most {MAX_PATH_CHARS} are allowed", param="path")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidUploadError(f"is over {MAX_PATH_BYTES} bytes in UTF-8; use a shorter path", param="path")
    if bad := next((ch for ch in path if unicodedata.category(ch).startswith("C")), None):
        raise InvalidUploadError(f"contains the control or formatting character {bad!r}", param="path")
    if path.startswith("/"):
        raise InvalidUploadError(f"{path!r} must be relative to your documents (no leading '/')", param="path")
    if "\\" in path:
        raise InvalidUploadError(f"{path!r} contains '\\'; separate folders with '/'", param="path")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidUploadError(f"{path!r} has an empty, '.' or '..' segment", param="path")
        if segment != segment.strip():
            raise InvalidUploadError(f"{path!r} has a name that starts or ends with whitespace", param="path")
    if extensions is not None:
        _check_extension(path, extensions)
    return path


def content_type_for(path: str, extensions: Mapping[str, str]) -> str:
    """The content type the ingest parser reads ``path`` as, by its extension."""
    return extensions[_check_extension(path, extensions)]


def _check_extension(path: str, extensions: Collection[str]) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix not in extensions:
        what = f"a '{suffix}' file" if suffix else "a file without an extension"
        raise InvalidUploadError(
            f"{path!r} is {what}, which Strata cannot index; supported: {', '.join(sorted(extensions))}",
            param="path",
        )
    return suffix


def validate_content_type(content_type: str) -> str:
    """A media type such as ``text/plain; charset=utf-8``, else :class:`InvalidUploadError`.

    Only the form is checked: the ingest parser goes by the extension and reads only the charset
    from the content type, so a declared type cannot make it misread a file.
    """
    if len(content_type) > MAX_CONTENT_TYPE_CHARS or not _MEDIA_TYPE.fullmatch(content_type):
        raise InvalidUploadError(f"{content_type[:80]!r} is not a media type like 'text/plain'", param="content_type")
    return content_type


class DocumentUploads:
    """Grants uploads to and deletes documents from one tenant's prefix of the documents bucket.

    Parameters
    ----------
    s3
        A boto3 S3 client; presigned posts are signed with its credentials (use SigV4).
    registry
        The document registry (read for deletions and marked ``deleting``).
    bucket
        The documents bucket.
    extensions
        File extension (``.pdf``) → the content type it is parsed as: what ingestion can read.
    max_bytes
        The largest file S3 accepts (``content-length-range``); ingestion rejects larger ones too.
    expires_in
        Seconds a granted upload stays valid.

    Examples
    --------
    >>> upload = uploads.presign("acme", "notes/q3.pdf")  # doctest: +SKIP
    >>> requests.post(upload.upload.url, data=upload.upload.fields, files={"file": data})  # doctest: +SKIP
    """

    def __init__(
        self,
        s3: Any,
        *,
        registry: DocumentRegistry,
        bucket: str,
        extensions: Mapping[str, str],
        max_bytes: int,
        tenant_prefix: str = TENANT_PREFIX,
        expires_in: int = DEFAULT_EXPIRES_IN_S,
    ) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be at least 1 (given {max_bytes})")
        if not 1 <= expires_in <= 7 * 24 * 3600:
            raise ValueError(f"expires_in must be between 1 s and 7 days, SigV4's limit (given {expires_in})")
        self._s3 = s3
        self._registry = registry
        self._bucket = bucket
        self._extensions = dict(extensions)
        self._max_bytes = max_bytes
        self._prefix = tenant_prefix
        self._expires_in = expires_in

    def presign(self, tenant: str, path: str, *, content_type: str | None = None) -> DocumentUpload:
        """A presigned POST for ``tenants/{tenant}/{path}``; re-uploading a path replaces the document."""
        validate_document_path(path, extensions=self._extensions)
        content_type = validate_content_type(content_type) if content_type else content_type_for(path, self._extensions)
        key = source_key_for(tenant, path, self._prefix)
        if len(key.encode()) > MAX_KEY_BYTES:
            raise InvalidUploadError(f"makes an S3 key over {MAX_KEY_BYTES} bytes; use a shorter path", param="path")
        post = self._s3.generate_presigned_post(
            Bucket=self._bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            # bucket and key conditions are added by boto3 from the arguments above.
            Conditions=[{"Content-Type": content_type}, ["content-length-range", 1, self._max_bytes]],
            ExpiresIn=self._expires_in,
        )
        return DocumentUpload(
            document_id=document_id_for(key),
            source_key=key,
            content_type=content_type,
            max_bytes=self._max_bytes,
            upload=UploadForm(url=post["url"], fields=post["fields"]),
            expires_in=self._expires_in,
        )

    def delete(self, tenant: str, document_id: str) -> DocumentRecord:
        """Delete the document's object; the record it returns reads ``deleting``.

        Raises :class:`DocumentNotFoundError` for an id this tenant has no document under.
        """
        record = self._registry.get(tenant, document_id)
        self._check_owner(record, tenant)
        self._s3.delete_object(Bucket=self._bucket, Key=record.source_key)
        logger.info("deleted %s (%s); ingestion removes its chunks", record.source_key, document_id)
        marked = self._registry.mark_deleting(tenant, document_id)
        return marked or record.model_copy(update={"status": DocumentStatus.DELETING})

    def _check_owner(self, record: DocumentRecord, tenant: str) -> None:
        # The registry is keyed by tenant already; this guards the object key itself, so a bad
        # record can never make one tenant's call delete another tenant's file.
        try:
            owner = parse_source_key(record.source_key, self._prefix).tenant
        except InvalidSourceKeyError:
            owner = None
        if owner != tenant:
            logger.error("record %s of %s points at %s; not deleting", record.document_id, tenant, record.source_key)
            raise DocumentNotFoundError(f"no document {record.document_id!r}")
