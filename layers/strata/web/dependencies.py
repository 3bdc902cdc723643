"""Per-request dependencies, injected with ``Depends`` and overridable in tests."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request

from strata import aws
from strata.auth import MissingCredentialsError, PermissionDeniedError, Principal
from strata.chat import ChatService
from strata.config import Settings, get_settings, route_for
from strata.documents import DocumentRegistry
from strata.inference import (
    CachedEmbedder,
    CircuitBreakers,
    ModelRegistry,
    ResponseCache,
    SageMakerEmbedder,
    registry_from_settings,
)
from strata.inference.factory import build_breakers, build_router
from strata.retrieval import Retriever, build_vector_store

# Lambda Web Adapter passes API Gateway's request context in this header; the local gateway does too.
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"


def current_principal(request: Request) -> Principal:
    """The caller the authorizer resolved (Mangum: the event; LWA and local gateway: the header)."""
    event = request.scope.get("aws.event")
    if event is not None:
        context = (event.get("requestContext") or {}).get("authorizer") or {}
    else:
        raw = request.headers.get(REQUEST_CONTEXT_HEADER)
        context = (json.loads(raw).get("authorizer") or {}) if raw else {}
    if "tenant" not in context:
        raise MissingCredentialsError("request was not authorized")
    return Principal.from_context(context)


def authorized_principal(request: Request) -> Principal:
    """The caller, checked against the scope the route table gives the matched route (403)."""
    principal = current_principal(request)
    route = request.scope.get("route")
    spec = route_for(request.method, getattr(route, "path", ""))
    if spec is None:  # a route the table does not know: refuse rather than guess its scope
        raise PermissionDeniedError(f"{request.method} {request.url.path} is not in the route table")
    if not principal.allows(spec.scope):
        raise PermissionDeniedError(f"this key does not have the '{spec.scope}' scope this route needs")
    return principal


@lru_cache
def _embedder(settings: Settings) -> SageMakerEmbedder:
    return SageMakerEmbedder(aws.client("sagemaker-runtime", settings), settings.embedding_endpoint)


@lru_cache
def _registry(settings: Settings) -> ModelRegistry:
    return registry_from_settings(settings)


@lru_cache
def _breakers(settings: Settings) -> CircuitBreakers:
    return build_breakers(settings)


@lru_cache
def _chat_service(settings: Settings) -> ChatService:
    cache = None
    if settings.response_cache_ttl_s:
        table = aws.resource("dynamodb", settings).Table(settings.response_cache_table)
        cache = ResponseCache(table, ttl_s=settings.response_cache_ttl_s)
    return ChatService(
        retriever=Retriever(build_vector_store(settings), CachedEmbedder(_embedder(settings))),
        router=build_router(settings, _registry(settings), _breakers(settings)),
        settings=settings,
        cache=cache,
    )


def chat_service(settings: Annotated[Settings, Depends(get_settings)]) -> ChatService:
    return _chat_service(settings)


def embedder(settings: Annotated[Settings, Depends(get_settings)]) -> SageMakerEmbedder:
    return _embedder(settings)


def model_registry(settings: Annotated[Settings, Depends(get_settings)]) -> ModelRegistry:
    return _registry(settings)


def breakers(settings: Annotated[Settings, Depends(get_settings)]) -> CircuitBreakers:
    return _breakers(settings)


def document_registry(settings: Annotated[Settings, Depends(get_settings)]) -> DocumentRegistry:
    return DocumentRegistry(aws.resource("dynamodb", settings).Table(settings.documents_table))


CurrentPrincipal = Annotated[Principal, Depends(authorized_principal)]


# The gateway's stores, one per resource, each built once per settings by its package's builder.
@lru_cache
def _key_store(settings: Settings) -> Any:
    from strata.auth import build_key_store

    return build_key_store(settings)


@lru_cache
def _tenant_store(settings: Settings) -> Any:
    from strata.auth import build_tenant_store

    return build_tenant_store(settings)


@lru_cache
def _rate_limiter(settings: Settings) -> Any:
    from strata.throttle import build_rate_limiter

    return build_rate_limiter(settings)


@lru_cache
def _prompt_store(settings: Settings) -> Any:
    from strata.prompts import build_prompt_store

    return build_prompt_store(settings)


@lru_cache
def _feedback_store(settings: Settings) -> Any:
    from strata.feedback import build_feedback_store

    return build_feedback_store(settings)


@lru_cache
def _document_uploads(settings: Settings) -> Any:
    from strata.documents import build_document_uploads

    return build_document_uploads(settings)


def key_store(settings: Annotated[Settings, Depends(get_settings)]) -> Any:
    return _key_store(settings)


def tenant_store(settings: Annotated[Settings, Depends(get_settings)]) -> Any:
    return _tenant_store(settings)


def rate_limiter(settings: Annotated[Settings, Depends(get_settings)]) -> Any:
    return _rate_limiter(settings)


def prompt_store(settings: Annotated[Settings, Depends(get_settings)]) -> Any:
    return _prompt_store(settings)


def feedback_store(settings: Annotated[Settings, Depends(get_settings)]) -> Any:
    return _feedback_store(settings)


def document_uploads(settings: Annotated[Settings, Depends(get_settings)]) -> Any:
    return _document_uploads(settings)
