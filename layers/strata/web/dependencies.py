"""Per-request dependencies, injected with ``Depends`` and overridable in tests."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any

from fastapi import Depends, Request

from strata import aws
from strata.auth import (
    ApiKeyStore,
    MissingCredentialsError,
    PermissionDeniedError,
    Principal,
    TenantStore,
    build_key_store,
    build_tenant_store,
)
from strata.chat import ChatPipeline, RequestContext, new_request_id
from strata.config import Settings, get_settings, route_for
from strata.documents import DocumentRegistry, DocumentUploads, build_document_uploads
from strata.embeddings import EmbeddingPipeline
from strata.feedback import FeedbackStore, build_feedback_store
from strata.inference import (
    CachedEmbedder,
    CircuitBreakers,
    ModelRegistry,
    ResponseCache,
    SageMakerEmbedder,
    registry_from_settings,
)
from strata.inference.factory import build_breakers, build_router
from strata.interactions import build_interaction_writer
from strata.observability import RequestLog
from strata.observability.metrics import GATEWAY_SERVICE
from strata.prompts import PromptStore, build_prompt_store
from strata.retrieval import QueryEmbedder, VectorStore, build_retriever, build_vector_store
from strata.throttle import RateLimiter, build_rate_limiter

# Lambda Web Adapter passes API Gateway's request context in this header; the local gateway does too.
REQUEST_CONTEXT_HEADER = "x-amzn-request-context"


def _request_context(request: Request) -> dict[str, Any]:
    """API Gateway's request context (Mangum: the event; LWA and local gateway: the header)."""
    cached = request.scope.get("strata.request_context")
    if cached is None:
        event = request.scope.get("aws.event")
        if event is not None:
            cached = event.get("requestContext") or {}
        else:
            raw = request.headers.get(REQUEST_CONTEXT_HEADER)
            cached = json.loads(raw) if raw else {}
        request.scope["strata.request_context"] = cached
    return cached


def request_context(request: Request) -> RequestContext:
    """Our request id, API Gateway's (the log's correlation id), and the authorizer's time where
    the gateway measured it."""
    context = _request_context(request)
    latency = (context.get("authorizer") or {}).get("latency")
    return RequestContext(
        request_id=new_request_id(),
        correlation_id=context.get("requestId", ""),
        auth_ms=float(latency) if latency is not None else None,
    )


def current_principal(request: Request) -> Principal:
    """The caller the authorizer resolved."""
    context = _request_context(request).get("authorizer") or {}
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
def _chat_pipeline(settings: Settings) -> ChatPipeline:
    cache = None
    if settings.response_cache_ttl_s:
        table = aws.resource("dynamodb", settings).Table(settings.response_cache_table)
        cache = ResponseCache(table, ttl_s=settings.response_cache_ttl_s)
    return ChatPipeline(
        retriever=build_retriever(settings, _vector_store(settings), _query_embedder(settings)),
        router=build_router(settings, _registry(settings), _breakers(settings)),
        settings=settings,
        cache=cache,
        limiter=_rate_limiter(settings),
        log=request_log(settings),
        prompts=_prompt_store(settings),
        interactions=build_interaction_writer(settings),
    )


def chat_pipeline(settings: Annotated[Settings, Depends(get_settings)]) -> ChatPipeline:
    return _chat_pipeline(settings)


@lru_cache
def request_log(settings: Settings) -> RequestLog:
    return RequestLog(GATEWAY_SERVICE, namespace=settings.metrics_namespace, log_content=settings.log_content)


def embedder(settings: Annotated[Settings, Depends(get_settings)]) -> SageMakerEmbedder:
    return _embedder(settings)


# One vector store and one query-embedding cache per settings, shared by chat and POST /v1/search
# where both apps run in one process (the local gateway).
@lru_cache
def _vector_store(settings: Settings) -> VectorStore:
    return build_vector_store(settings)


def vector_store(settings: Annotated[Settings, Depends(get_settings)]) -> VectorStore:
    return _vector_store(settings)


@lru_cache
def _query_embedder(settings: Settings) -> CachedEmbedder:
    return CachedEmbedder(_embedder(settings))


def query_embedder(settings: Annotated[Settings, Depends(get_settings)]) -> QueryEmbedder:
    return _query_embedder(settings)


@lru_cache
def _embedding_pipeline(settings: Settings) -> EmbeddingPipeline:
    return EmbeddingPipeline(_embedder(settings), limiter=_rate_limiter(settings), log=request_log(settings))


def embedding_pipeline(settings: Annotated[Settings, Depends(get_settings)]) -> EmbeddingPipeline:
    return _embedding_pipeline(settings)


def model_registry(settings: Annotated[Settings, Depends(get_settings)]) -> ModelRegistry:
    return _registry(settings)


def breakers(settings: Annotated[Settings, Depends(get_settings)]) -> CircuitBreakers:
    return _breakers(settings)


def document_registry(settings: Annotated[Settings, Depends(get_settings)]) -> DocumentRegistry:
    return DocumentRegistry(aws.resource("dynamodb", settings).Table(settings.documents_table))


CurrentPrincipal = Annotated[Principal, Depends(authorized_principal)]
CurrentRequest = Annotated[RequestContext, Depends(request_context)]


# The gateway's stores, one per resource, each built once per settings by its package's builder.
@lru_cache
def _key_store(settings: Settings) -> ApiKeyStore:
    return build_key_store(settings)


def key_store(settings: Annotated[Settings, Depends(get_settings)]) -> ApiKeyStore:
    return _key_store(settings)


@lru_cache
def _tenant_store(settings: Settings) -> TenantStore:
    return build_tenant_store(settings)


def tenant_store(settings: Annotated[Settings, Depends(get_settings)]) -> TenantStore:
    return _tenant_store(settings)


@lru_cache
def _rate_limiter(settings: Settings) -> RateLimiter:
    return build_rate_limiter(settings)


def rate_limiter(settings: Annotated[Settings, Depends(get_settings)]) -> RateLimiter:
    return _rate_limiter(settings)


@lru_cache
def _prompt_store(settings: Settings) -> PromptStore:
    return build_prompt_store(settings)


def prompt_store(settings: Annotated[Settings, Depends(get_settings)]) -> PromptStore:
    return _prompt_store(settings)


@lru_cache
def _feedback_store(settings: Settings) -> FeedbackStore:
    return build_feedback_store(settings)


def feedback_store(settings: Annotated[Settings, Depends(get_settings)]) -> FeedbackStore:
    return _feedback_store(settings)


@lru_cache
def _document_uploads(settings: Settings) -> DocumentUploads:
    return build_document_uploads(settings)


def document_uploads(settings: Annotated[Settings, Depends(get_settings)]) -> DocumentUploads:
    return _document_uploads(settings)
