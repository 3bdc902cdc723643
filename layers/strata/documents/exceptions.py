class DocumentsError(Exception):
    """Base error of the documents package."""


class InvalidSourceKeyError(DocumentsError, ValueError):
    """An object key that does not follow ``tenants/{tenant}/{path}``."""


class DocumentNotFoundError(DocumentsError, LookupError):
    """No such document for this tenant."""
