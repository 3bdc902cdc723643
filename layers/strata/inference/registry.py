"""The model registry: aliases → a provider target, its limits, its tokenizer and its fallbacks.

Locally it is a YAML file (``strata dev --models FILE`` or ``STRATA_MODELS_FILE``); in AWS the CDK
app passes the same document in ``STRATA_MODELS`` (JSON is YAML). Without either, ``default`` is
the SageMaker chat endpoint from the settings. A bad document fails at start with the field named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from strata.inference.exceptions import ModelRegistryError, UnknownModelError

DEFAULT_ALIAS = "default"

_REQUIRED = {"openai": ("base_url", "model"), "sagemaker": ("endpoint",), "bedrock": ("model",)}


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    connect_s: float = Field(default=3.0, gt=0)
    # Until the first byte of the answer: prefill of a long prompt on a busy GPU takes a while.
    first_byte_s: float = Field(default=30.0, gt=0)
    total_s: float = Field(default=300.0, gt=0)


class ModelTarget(BaseModel):
    """One alias: where its model runs and how the router treats it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: Literal["openai", "sagemaker", "bedrock"]
    # openai: the API root (…/v1) and the upstream's own model name; bedrock: the model id.
    base_url: str | None = None
    model: str | None = None
    api_key_env: str | None = None  # the variable holding the upstream's key (never the client's)
    # sagemaker: the endpoint, and the inference component when the endpoint hosts several.
    endpoint: str | None = None
    inference_component: str | None = None
    region: str | None = None
    context_window: int = Field(default=4096, ge=16)
    max_output_tokens: int = Field(default=512, ge=1)
    tokenizer: str | None = None  # a builtin name ("smollm2") or a tokenizer.json path; unset: estimate
    parameters: dict[str, Any] = Field(default_factory=dict)  # defaults sent upstream with every call
    fallbacks: tuple[str, ...] = ()
    timeouts: Timeouts = Field(default_factory=Timeouts)

    @model_validator(mode="after")
    def _provider_fields(self) -> ModelTarget:
        missing = [name for name in _REQUIRED[self.provider] if not getattr(self, name)]
        if missing:
            raise ValueError(f"provider {self.provider!r} needs {', '.join(missing)}")
        if self.max_output_tokens >= self.context_window:
            raise ValueError(f"max_output_tokens ({self.max_output_tokens}) must be below context_window")
        return self


class ModelRegistry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: dict[str, ModelTarget] = Field(min_length=1)

    @model_validator(mode="after")
    def _aliases(self) -> ModelRegistry:
        if DEFAULT_ALIAS not in self.models:
            raise ValueError(f"an alias named {DEFAULT_ALIAS!r} is required")
        for alias, target in self.models.items():
            for fallback in target.fallbacks:
                if fallback == alias:
                    raise ValueError(f"{alias}.fallbacks: {alias!r} cannot fall back to itself")
                if fallback not in self.models:
                    raise ValueError(f"{alias}.fallbacks: unknown alias {fallback!r}")
        return self

    def target(self, alias: str) -> ModelTarget:
        try:
            return self.models[alias]
        except KeyError:
            raise UnknownModelError(f"The model '{alias}' does not exist", target=alias) from None

    def chain(self, alias: str) -> list[str]:
        """The alias, then its fallbacks in order: the targets a request may be served by."""
        return [alias, *(f for f in self.target(alias).fallbacks if f != alias)]

    @property
    def aliases(self) -> list[str]:
        return list(self.models)


def parse_registry(document: Mapping[str, Any] | Any, *, source: str) -> ModelRegistry:
    try:
        return ModelRegistry.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "models"
        raise ModelRegistryError(f"{source}: {field}: {first['msg']}") from None


def _parse_text(text: str, *, source: str) -> ModelRegistry:
    import yaml  # only a registry given as text pays for it at cold start

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ModelRegistryError(f"{source}: not valid YAML or JSON: {error}") from None
    return parse_registry(document, source=source)


def _read_parameter(settings: Any) -> str:
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    from strata import aws

    try:
        return SSMProvider(boto3_client=aws.client("ssm", settings)).get(settings.models_parameter, decrypt=True)
    except Exception as error:  # GetParameterError: missing, no access
        raise ModelRegistryError(f"SSM parameter {settings.models_parameter}: cannot be read ({error})") from None


def load_registry(path: Path) -> ModelRegistry:
    try:
        text = path.read_text()
    except OSError as error:
        raise ModelRegistryError(f"{path}: cannot read the models file ({error.strerror})") from None
    return _parse_text(text, source=str(path))


def registry_from_settings(settings: Any) -> ModelRegistry:
    """The registry the settings name: ``models`` (a YAML/JSON document), ``models_parameter`` (an
    SSM parameter holding one, read at cold start), ``models_file``, or the default."""
    if settings.models:
        return _parse_text(settings.models, source="STRATA_MODELS")
    if settings.models_parameter:
        return _parse_text(_read_parameter(settings), source=f"SSM parameter {settings.models_parameter}")
    if settings.models_file:
        return load_registry(Path(settings.models_file))
    return parse_registry(
        {
            "models": {
                DEFAULT_ALIAS: {
                    "provider": "sagemaker",
                    "endpoint": settings.chat_endpoint,
                    "inference_component": settings.chat_inference_component or None,
                    "context_window": settings.chat_context_window,
                    "max_output_tokens": settings.max_output_tokens,
                    "tokenizer": settings.chat_tokenizer or None,  # "": estimate
                    "parameters": json.loads(settings.chat_parameters),
                }
            }
        },
        source="settings",
    )
