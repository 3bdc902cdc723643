"""Per-request dependencies, injected with ``Depends`` and overridable in tests."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request

from strata import aws
from strata.auth import MissingCredentialsError, Principal, principal_from_context
from strata.chat import ChatService
from strata.config import Settings, get_settings
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
    return principal_from_context(context)


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


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
