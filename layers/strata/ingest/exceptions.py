"""Errors raised while turning an uploaded file into text.

Every error here is permanent: retrying the same bytes gives the same result. The ingest
pipeline records the message in the document registry (it is written for the document's owner)
and the handler parks the event in the DLQ at once, with the reason: never retried, never dropped.
"""

from __future__ import annotations


class DocumentError(Exception):
    """Base error: the document cannot be ingested. ``str(error)`` is safe to show to users."""

    def __init__(self, message: str, *, key: str | None = None, etag: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.key = key
        # The object version it condemns, so that the same bytes are not tried again at restart.
        self.etag = etag


class UnsupportedDocumentError(DocumentError):
    """The file type (extension or content type) is not one Strata can read."""


class UnreadableDocumentError(DocumentError):
    """The file claims a supported type but its content cannot be read: corrupt, binary or empty."""
