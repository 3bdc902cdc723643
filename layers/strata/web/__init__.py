"""What the FastAPI apps of the chat and api functions share: errors and dependencies."""

from strata.config.routes import UNAUTHORIZED_BODY, error_body
from strata.web.dependencies import (
    REQUEST_CONTEXT_HEADER,
    CurrentPrincipal,
    CurrentRequest,
    breakers,
    chat_pipeline,
    current_principal,
    document_registry,
    document_uploads,
    embedder,
    embedding_pipeline,
    feedback_store,
    key_store,
    model_registry,
    prompt_store,
    rate_limiter,
    request_log,
    tenant_store,
)
from strata.web.errors import (
    error_response,
    install_error_handlers,
    public_error_body,
)

__all__ = (
    "REQUEST_CONTEXT_HEADER",
    "UNAUTHORIZED_BODY",
    "CurrentPrincipal",
    "CurrentRequest",
    "breakers",
    "chat_pipeline",
    "current_principal",
    "document_registry",
    "document_uploads",
    "embedder",
    "embedding_pipeline",
    "feedback_store",
    "key_store",
    "error_body",
    "error_response",
    "install_error_handlers",
    "model_registry",
    "prompt_store",
    "public_error_body",
    "rate_limiter",
    "request_log",
    "tenant_store",
)
