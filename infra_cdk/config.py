"""The deployment configuration, read once from the ``strata`` key of the CDK context.

``cdk.json`` holds the defaults; another context source (``cdk synth -c strata='<JSON>'``) can
replace the whole object. Everything is validated at synth time, before any construct is built,
and a bad value fails with one error that names every offending field.

Examples
--------
>>> config = StrataConfig.from_context(
...     app.node.try_get_context(CONTEXT_KEY), queue_visibility_timeout_s=900
... )
>>> config.prefix
'strata-dev'
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from aws_cdk import aws_logs as logs
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError

from strata.config import RESOURCES, Settings
from strata.inference.registry import ModelRegistryError, parse_registry

CONTEXT_KEY = "strata"
"""The context key that holds the whole configuration object."""

_FORBID_EXTRA = ConfigDict(extra="forbid")
_NAME = r"^[a-z][a-z0-9-]*[a-z0-9]$"
# <account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>  (or @sha256:<digest>)
_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?"
    r"/(?P<repository>[a-z0-9._/-]+)(:[\w.-]+|@sha256:[0-9a-f]{64})$"
)

PositiveInt = Annotated[int, Field(ge=1)]
RetentionDaysValue = Literal[1, 3, 5, 7, 14, 30, 60, 90, 180, 365, 731, 1827, 3653]
_RETENTION: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


class ConfigError(ValueError):
    """The CDK context does not describe a deployable Strata stack."""


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One SageMaker real-time endpoint: container image, instance and model.

    image_uri
        An ECR image in the stack's region (SageMaker pulls only from ECR), e.g. the AWS DJL LMI
        image for generation or the Hugging Face TEI image for embeddings.
    instance_type
        A SageMaker hosting instance type (``ml.*``).
    model_id
        The Hugging Face model id handed to the container as ``HF_MODEL_ID``.
    initial_instance_count
        Instances behind the endpoint at deploy time. Default 1.
    environment
        Extra container environment (``OPTION_*`` for LMI, ``MAX_BATCH_TOKENS`` for TEI ...).
    container_startup_timeout_s
        How long SageMaker waits for ``GET /ping`` to answer after start. Default 900 s.
    model_data_url
        Optional ``s3://`` URI of model artifacts; the execution role gets read access to it.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    image_uri: str
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")]
    model_id: Annotated[str, Field(min_length=1)]
    initial_instance_count: PositiveInt = 1
    environment: dict[str, str] = field(default_factory=dict)
    container_startup_timeout_s: Annotated[int, Field(ge=60, le=3600)] = 900
    model_data_url: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]+/.+$")] | None = None


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The public REST API.

    throttle_rate_limit / throttle_burst_limit
        Stage-wide request throttling (steady requests per second / burst). Defaults 50 / 100.
        Per-tenant rate limits and token quotas are enforced in the backend, not here.
    authorizer_cache_ttl_s
        How long API Gateway caches an authorizer decision per ``Authorization`` header. Short, so
        a revoked key stops working quickly. Default 60 s (0 disables caching).
    chat_timeout_s
        Chat function timeout and streaming integration timeout (response streaming may run up to
        15 minutes). Default 300 s.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    throttle_rate_limit: Annotated[float, Field(gt=0)] = 50.0
    throttle_burst_limit: PositiveInt = 100
    authorizer_cache_ttl_s: Annotated[int, Field(ge=0, le=3600)] = RESOURCES.api.authorizer_cache_ttl_s
    chat_timeout_s: Annotated[int, Field(ge=30, le=900)] = 300


@dataclass(frozen=True, slots=True)
class SearchConfig:
    """The OpenSearch domain that holds the chunk vectors.

    engine_version
        OpenSearch version (``x.y``); 2.10 or later for hybrid search pipelines. Default 2.19.
    instance_type
        Data node instance type (``*.search``). Default ``t3.medium.search`` (development size).
    data_nodes
        Data node count; 2 or more turns on zone awareness across that many AZs (max 3).
    volume_size_gb
        gp3 EBS volume per data node. Default 20 GiB.
    index
        The chunk index, shared with the Lambdas as ``STRATA_OPENSEARCH_INDEX`` (Settings default).
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    engine_version: Annotated[str, Field(pattern=r"^\d+\.\d+$")] = "2.19"
    instance_type: Annotated[str, Field(pattern=r"^[a-z0-9]+\.[a-z0-9]+\.search$")] = "t3.medium.search"
    data_nodes: Annotated[int, Field(ge=1, le=10)] = 1
    volume_size_gb: Annotated[int, Field(ge=10, le=1024)] = 20
    index: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")] = Settings.model_fields["opensearch_index"].default


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """The ingest function's SQS event source.

    timeout_s
        Function timeout. Must not exceed the queue's visibility timeout (AWS recommends the
        visibility timeout be six times the function timeout). Default 150 s (= 900 s / 6).
    batch_size
        Messages per invocation; failures are reported per item. Default 5.
    max_concurrency
        Concurrent ingest invocations, which caps the load on the embedding endpoint. Default 5.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    timeout_s: Annotated[int, Field(ge=10, le=900)] = 150
    batch_size: Annotated[int, Field(ge=1, le=10)] = 5
    max_concurrency: Annotated[int, Field(ge=2, le=1000)] = 5


@dataclass(frozen=True, slots=True)
class StrataConfig:
    """Everything that varies between deployments of the Strata stack.

    stage
        Deployment name (``dev``, ``prod``): part of the stack, endpoint and domain names.
    region
        The AWS region; image URIs must be in it.
    chat_model / embedding_model
        The two SageMaker endpoints (see :class:`ModelConfig`).
    architecture
        Lambda architecture; the Lambda Web Adapter layer and the pip platform follow it.
        Default ``arm64``.
    lwa_layer_version
        Version of AWS's public ``LambdaAdapterLayer{Arm64,X86}`` layer. Default 30 (LWA 1.1.0).
    retain_data
        Keep the bucket, tables and domain when the stack is deleted (and protect the tables from
        deletion). Default true.
    log_retention_days
        Retention of every log group the stack creates. Default 30.
    api / search / ingest
        See :class:`ApiConfig`, :class:`SearchConfig` and :class:`IngestConfig`.
    models
        The model registry's ``models`` mapping (aliases → targets, fallbacks; the shape of
        ``strata dev --models FILE``), passed to the functions as ``STRATA_MODELS``. Default: one
        alias ``default`` on the chat endpoint, its window read from ``OPTION_MAX_MODEL_LEN``.
    models_parameter
        Instead of ``models``: the name of an SSM parameter holding the same document, read by
        the functions at cold start (change models without a deploy). Default none.
    jwt_issuer / jwt_audience
        Optional JWT sign-in next to API keys, e.g. a Cognito user pool: the issuer
        (``https://cognito-idp.<region>.amazonaws.com/<pool id>``; its JWKS is read from
        ``<issuer>/.well-known/jwks.json``) and the audience (the app client id). Both or
        neither. Default none: API keys only.
    jwt_tenant_claim
        The token claim naming the tenant. Default: the library's (``custom:tenant``).
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    stage: Annotated[str, Field(pattern=_NAME, max_length=12)]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    chat_model: ModelConfig
    embedding_model: ModelConfig
    architecture: Literal["arm64", "x86_64"] = "arm64"
    lwa_layer_version: PositiveInt = 30
    retain_data: bool = True
    log_retention_days: RetentionDaysValue = 30
    api: ApiConfig = field(default_factory=ApiConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    models: dict[str, Any] | None = None
    models_parameter: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_.\-/]+$")] | None = None
    jwt_issuer: Annotated[str, Field(min_length=1)] | None = None
    jwt_audience: Annotated[str, Field(min_length=1)] | None = None
    jwt_tenant_claim: Annotated[str, Field(min_length=1)] | None = None

    @property
    def chat_context_window(self) -> int:
        """The chat model's window as its container is told (LMI/vLLM: ``OPTION_MAX_MODEL_LEN``)."""
        return int(self.chat_model.environment.get("OPTION_MAX_MODEL_LEN", 4096))

    @property
    def models_document(self) -> str | None:
        return json.dumps({"models": self.models}, separators=(",", ":")) if self.models else None

    @property
    def prefix(self) -> str:
        """Prefix for physical names that must be chosen up front (``strata-<stage>``)."""
        return f"strata-{self.stage}"

    @property
    def log_retention(self) -> logs.RetentionDays:
        return _RETENTION[self.log_retention_days]

    @property
    def chat_endpoint_name(self) -> str:
        return f"{self.prefix}-chat"

    @property
    def embedding_endpoint_name(self) -> str:
        return f"{self.prefix}-embed"

    @classmethod
    def from_context(cls, raw: Mapping[str, Any] | str | None, *, queue_visibility_timeout_s: int) -> StrataConfig:
        """Parse and validate the context object; raise :class:`ConfigError` naming every problem.

        ``queue_visibility_timeout_s`` is the ingest queue's (from ``RESOURCES``): the ingest
        function's timeout is checked against it.
        """
        if raw is None:
            raise ConfigError(f"CDK context key {CONTEXT_KEY!r} is missing (see cdk.json)")
        if isinstance(raw, str):  # `cdk -c strata=...` passes a string
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"CDK context {CONTEXT_KEY!r} is not a JSON object: {exc}") from None
        if not isinstance(raw, Mapping):
            raise ConfigError(f"CDK context {CONTEXT_KEY!r} must be an object, not {type(raw).__name__}")
        try:
            config = _ADAPTER.validate_python(dict(raw))
        except ValidationError as exc:
            problems = [f"  {CONTEXT_KEY}.{_loc(err['loc'])}: {err['msg']}" for err in exc.errors()]
            raise ConfigError("invalid CDK context:\n" + "\n".join(problems)) from None
        problems = config._cross_field_problems(queue_visibility_timeout_s)
        if problems:
            raise ConfigError("invalid CDK context:\n" + "\n".join(f"  {p}" for p in problems))
        return config

    def _cross_field_problems(self, queue_visibility_timeout_s: int) -> list[str]:
        problems: list[str] = []
        for name, model in (("chat_model", self.chat_model), ("embedding_model", self.embedding_model)):
            match = _ECR_IMAGE.match(model.image_uri)
            if match is None:
                problems.append(
                    f"{CONTEXT_KEY}.{name}.image_uri: {model.image_uri!r} is not an ECR image URI "
                    "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"
                )
            elif match["region"] != self.region:
                problems.append(
                    f"{CONTEXT_KEY}.{name}.image_uri: image is in {match['region']!r} but the stack "
                    f"deploys to {self.region!r}; SageMaker pulls images from its own region"
                )
        if self.models is not None and self.models_parameter is not None:
            problems.append(f"{CONTEXT_KEY}.models_parameter: set either models or models_parameter, not both")
        if self.models is not None:
            try:
                parse_registry({"models": self.models}, source=f"{CONTEXT_KEY}")
            except ModelRegistryError as error:
                problems.append(str(error))
        problems.extend(self._jwt_problems())
        if self.ingest.timeout_s > queue_visibility_timeout_s:
            problems.append(
                f"{CONTEXT_KEY}.ingest.timeout_s: {self.ingest.timeout_s} exceeds the ingest queue's "
                f"visibility timeout ({queue_visibility_timeout_s} s); messages would be redelivered "
                "while still being processed"
            )
        if self.region.startswith("cn-"):
            problems.append(
                f"{CONTEXT_KEY}.region: China regions publish the Lambda Web Adapter layer from other "
                "accounts; not supported yet"
            )
        if self.search.data_nodes > 3 and self.search.data_nodes % 3:
            problems.append(
                f"{CONTEXT_KEY}.search.data_nodes: {self.search.data_nodes} does not spread evenly "
                "over 3 availability zones"
            )
        return problems

    def _jwt_problems(self) -> list[str]:
        if self.jwt_issuer is None:
            return [
                f"{CONTEXT_KEY}.{name}: set only with jwt_issuer (JWT sign-in is off without an issuer)"
                for name in ("jwt_audience", "jwt_tenant_claim")
                if getattr(self, name) is not None
            ]
        problems: list[str] = []
        issuer = urlsplit(self.jwt_issuer)
        if issuer.scheme != "https" or not issuer.hostname or issuer.query or issuer.fragment:
            problems.append(
                f"{CONTEXT_KEY}.jwt_issuer: {self.jwt_issuer!r} is not an https URL without query or "
                "fragment (e.g. https://cognito-idp.<region>.amazonaws.com/<user pool id>); the "
                "authorizer fetches the signing keys from it"
            )
        if self.jwt_audience is None:
            # The library refuses an issuer without an audience: any app client of the pool would pass.
            problems.append(f"{CONTEXT_KEY}.jwt_audience: required with jwt_issuer (the app client id)")
        return problems

    @staticmethod
    def ecr_repository(image_uri: str) -> tuple[str, str, str]:
        """``(account, region, repository)`` of a validated ECR image URI."""
        match = _ECR_IMAGE.match(image_uri)
        if match is None:
            raise ConfigError(f"{image_uri!r} is not an ECR image URI")
        return match["account"], match["region"], match["repository"]


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


_ADAPTER: TypeAdapter[StrataConfig] = TypeAdapter(StrataConfig)
