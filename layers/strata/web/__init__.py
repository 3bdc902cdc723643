"""What the FastAPI apps of the chat and api functions share: errors and dependencies."""

from strata.web.dependencies import (
    REQUEST_CONTEXT_HEADER,
    CurrentPrincipal,
    breakers,
    chat_service,
    current_principal,
    document_registry,
    embedder,
    model_registry,
)
from strata.web.errors import (
    UNAUTHORIZED_BODY,
    error_body,
    error_response,
    install_error_handlers,
    public_error_body,
)

__all__ = (
    "REQUEST_CONTEXT_HEADER",
    "UNAUTHORIZED_BODY",
    "CurrentPrincipal",
    "breakers",
    "chat_service",
    "current_principal",
    "document_registry",
    "embedder",
    "error_body",
    "error_response",
    "install_error_handlers",
    "model_registry",
    "public_error_body",
)
