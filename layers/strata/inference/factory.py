"""Builds the router from the registry: one provider per alias, clients shared per timeout setting."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from botocore.config import Config

from strata import aws
from strata.config import Settings
from strata.inference.base import ChatProvider
from strata.inference.breaker import BreakerPolicy, CircuitBreakers, DynamoDBBreakerStore
from strata.inference.registry import ModelRegistry, ModelTarget, Timeouts, registry_from_settings
from strata.inference.router import InferenceRouter

if TYPE_CHECKING:
    import httpx


def build_router(
    settings: Settings, registry: ModelRegistry | None = None, breakers: CircuitBreakers | None = None
) -> InferenceRouter:
    registry = registry or registry_from_settings(settings)
    providers = {alias: build_chat_provider(alias, target, settings) for alias, target in registry.models.items()}
    return InferenceRouter(registry, providers, breakers or build_breakers(settings))


def build_breakers(settings: Settings) -> CircuitBreakers:
    return CircuitBreakers(
        DynamoDBBreakerStore(aws.resource("dynamodb", settings).Table(settings.breakers_table)),
        BreakerPolicy(
            failure_rate=settings.breaker_failure_rate,
            window=settings.breaker_window,
            min_calls=settings.breaker_min_calls,
            cooldown_s=settings.breaker_cooldown_s,
        ),
    )


def build_chat_provider(alias: str, target: ModelTarget, settings: Settings) -> ChatProvider:
    if target.provider == "openai":
        from strata.inference.openai_http import OpenAIChatProvider

        assert target.base_url is not None and target.model is not None  # the registry checked
        return OpenAIChatProvider(
            alias,
            client=_http_client(target.base_url, target.timeouts),
            buffered_timeout_s=target.timeouts.total_s,
            model=target.model,
            api_key_env=target.api_key_env,
            parameters=target.parameters,
        )
    if target.provider == "sagemaker":
        from strata.inference.sagemaker import SageMakerChatProvider

        assert target.endpoint is not None
        return SageMakerChatProvider(
            alias,
            client=_model_client("sagemaker-runtime", settings, target.timeouts, target.region),
            buffered_client=_model_client("sagemaker-runtime", settings, target.timeouts, target.region, buffered=True),
            endpoint=target.endpoint,
            inference_component=target.inference_component,
            parameters=target.parameters,
            wake_retry_after_s=settings.model_wake_retry_after_s,
        )
    from strata.inference.bedrock import BedrockChatProvider

    assert target.model is not None
    return BedrockChatProvider(
        alias,
        client=_model_client("bedrock-runtime", settings, target.timeouts, target.region),
        buffered_client=_model_client("bedrock-runtime", settings, target.timeouts, target.region, buffered=True),
        model_id=target.model,
        parameters=target.parameters,
    )


@lru_cache(maxsize=32)
def _http_client(base_url: str, timeouts: Timeouts) -> httpx.Client:
    import httpx  # only a registry with an OpenAI-compatible target pays for it at cold start

    return httpx.Client(
        base_url=base_url.rstrip("/") + "/",
        timeout=httpx.Timeout(connect=timeouts.connect_s, read=timeouts.first_byte_s, write=10.0, pool=10.0),
        limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
    )


@lru_cache(maxsize=32)
def _model_client(
    service: str, settings: Settings, timeouts: Timeouts, region: str | None, *, buffered: bool = False
) -> Any:
    # The router retries, once, for every provider: botocore's own retries would stack under it.
    # A buffered answer's first byte comes when the whole answer is done: it waits up to total_s.
    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=timeouts.connect_s,
        read_timeout=timeouts.total_s if buffered else timeouts.first_byte_s,
        max_pool_connections=64,
    )
    return aws.client(service, settings, config=config, region=region)
