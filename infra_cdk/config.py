"""The deployment configuration, read once from the ``strata`` key of the CDK context.

``cdk.json`` holds the settings every stage shares and, under ``environments``, what differs per
stage (``dev``: scale to zero, the smallest search domain, serverless embeddings; ``prod``: a warm
copy, three search nodes, embedding instances). Another context source
(``cdk synth -c strata='<JSON>'``) can replace the whole object. Everything is validated at synth
time, before any construct is built, and a bad value fails with one error that names every
offending field.

Examples
--------
>>> config = StrataConfig.from_context(app.node.try_get_context(CONTEXT_KEY), stage="prod")
>>> config.prefix
'strata-prod'
"""

from __future__ import annotations

import functools
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
class ImageConfig:
    """A container image from the SageMaker SDK's image tables, resolved for the stack's region.

    framework
        The SDK's name of the image family: ``djl-lmi`` (AWS's LMI container with vLLM),
        ``huggingface-tei`` (text-embeddings-inference on GPU), ``huggingface-tei-cpu`` ...
    version
        The family's version as the SDK's table lists it (``0.36.0`` for LMI, ``1.8.2`` for TEI).
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    framework: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    version: Annotated[str, Field(pattern=r"^[0-9][0-9a-z.]*$")]


@dataclass(frozen=True, slots=True)
class ChatScalingConfig:
    """Copies of the chat model (an inference component) and the instances they run on.

    scale_to_zero
        Let idle copies and instances go to zero (no GPU bills while nobody asks); the first
        request after that gets a 503 with ``Retry-After`` and ``strata.waking`` while an
        instance starts (minutes), and an alarm on ``NoCapacityInvocationFailures`` wakes it.
    min_copies
        Copies kept while not scaled to zero (at least 1). Default 1.
    max_copies
        Most copies target tracking may run. Default 2.
    max_instances
        Most instances managed instance scaling may start. Default: ``max_copies``.
    target_concurrent_requests_per_copy
        Target tracking on ``SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution``.
    scale_in_cooldown_s / scale_out_cooldown_s
        Target tracking cooldowns. Defaults 600 s / 60 s.
    accelerators_per_copy / memory_per_copy_mb
        What one copy reserves on its instance. Defaults 1 GPU / 12 GiB.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    scale_to_zero: bool = True
    min_copies: PositiveInt = 1
    max_copies: PositiveInt = 2
    max_instances: PositiveInt | None = None
    target_concurrent_requests_per_copy: Annotated[float, Field(gt=0, le=1000)] = 4.0
    scale_in_cooldown_s: Annotated[int, Field(ge=0, le=3600)] = 600
    scale_out_cooldown_s: Annotated[int, Field(ge=0, le=3600)] = 60
    accelerators_per_copy: Annotated[int, Field(ge=0, le=16)] = 1
    memory_per_copy_mb: Annotated[int, Field(ge=1024)] = 12288


@dataclass(frozen=True, slots=True)
class ServerlessConfig:
    """SageMaker Serverless Inference: billed per request, nothing while idle (CPU only).

    memory_mb
        1024 to 6144 in steps of 1024. Default 3072.
    max_concurrency
        Concurrent invocations before throttling. Default 10.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    memory_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = 3072
    max_concurrency: Annotated[int, Field(ge=1, le=200)] = 10


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """One SageMaker model: its container image, the model it serves and where it runs.

    image
        The image from the SageMaker SDK's tables (see :class:`ImageConfig`), resolved offline for
        the stack's region at synth time. Or:
    image_uri
        An ECR image in the stack's region, given whole (SageMaker pulls only from ECR).
    model_id
        The Hugging Face model id handed to the container as ``HF_MODEL_ID``.
    instance_type
        A SageMaker hosting instance type (``ml.*``). Not with ``serverless``.
    serverless
        Serverless inference instead of an instance (the embedding model only; see
        :class:`ServerlessConfig`).
    instances
        Instances of a non-serverless embedding endpoint. Default 1.
    scaling
        The chat model's copies and instances (see :class:`ChatScalingConfig`).
    environment
        Extra container environment (``OPTION_*`` for LMI, ``MAX_BATCH_TOKENS`` for TEI ...).
    container_startup_timeout_s
        How long SageMaker waits for ``GET /ping`` to answer after start. Default 900 s.
    model_data_url
        Optional ``s3://`` URI of model artifacts; the execution role gets read access to it.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    model_id: Annotated[str, Field(min_length=1)]
    image: ImageConfig | None = None
    image_uri: str | None = None
    instance_type: Annotated[str, Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$")] | None = None
    serverless: ServerlessConfig | None = None
    instances: PositiveInt = 1
    scaling: ChatScalingConfig = field(default_factory=ChatScalingConfig)
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
    """Where the chunk vectors live: an OpenSearch Service domain, or a Serverless collection.

    mode
        ``managed`` (default: a domain; the smallest one is the cheapest idle option) or
        ``serverless`` (a vector search collection; it bills at least its minimum OCUs).
    standby_replicas
        Serverless only: replicas in a second zone (production) or none (development). Default off.
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

    mode: Literal["managed", "serverless"] = "managed"
    standby_replicas: bool = False
    engine_version: Annotated[str, Field(pattern=r"^\d+\.\d+$")] = "2.19"
    instance_type: Annotated[str, Field(pattern=r"^[a-z0-9]+\.[a-z0-9]+\.search$")] = "t3.medium.search"
    data_nodes: Annotated[int, Field(ge=1, le=10)] = 1
    volume_size_gb: Annotated[int, Field(ge=10, le=1024)] = 20
    index: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")] = Settings.model_fields["opensearch_index"].default


@dataclass(frozen=True, slots=True)
class WafConfig:
    """AWS WAF in front of the REST API: AWS's managed rule groups and a per-IP rate rule.

    enabled
        Default true. Per-tenant limits live in the backend; this is the outer guard.
    rate_limit_per_5_min
        Requests one IP may send in any 5 minutes before WAF blocks it. Default 2000.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    enabled: bool = True
    rate_limit_per_5_min: Annotated[int, Field(ge=10, le=2_000_000_000)] = 2000


@dataclass(frozen=True, slots=True)
class VpcConfig:
    """Optional VPC placement of the functions and the search domain.

    enabled
        Default false (every service is reached over TLS with SigV4 on AWS's network).
    max_azs
        Availability zones. Default 2.
    nat_gateways
        NAT gateways for the functions' egress (JWKS, Bedrock, other providers). Default 1.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    enabled: bool = False
    max_azs: Annotated[int, Field(ge=1, le=3)] = 2
    nat_gateways: Annotated[int, Field(ge=0, le=3)] = 1


@dataclass(frozen=True, slots=True)
class MonitoringConfig:
    """Alarms and where they go.

    alarm_email
        Subscribed to the alarm topic when set. Default none (subscribe later).
    p99_latency_ms
        API p99 latency alarm threshold. Default 10 000 ms (a whole streamed answer).
    error_rate_percent
        API 5xx rate alarm threshold. Default 5 %.
    """

    __pydantic_config__: ClassVar[ConfigDict] = _FORBID_EXTRA

    alarm_email: Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None
    p99_latency_ms: Annotated[int, Field(ge=100)] = 10_000
    error_rate_percent: Annotated[float, Field(gt=0, le=100)] = 5.0


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
    interactions_retention_days
        Days the interaction log (prompts and answers) is kept before it expires. Default 90.
    api / search / waf / vpc / monitoring
        See :class:`ApiConfig`, :class:`SearchConfig`, :class:`WafConfig`, :class:`VpcConfig`
        and :class:`MonitoringConfig`.
    nag_packs
        cdk-nag rule packs the synthesis must pass besides ``AwsSolutions``: ``HIPAA.Security``,
        ``NIST.800.53.R5``. Default none.
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
    jwt_sign_in_origin
        With ``jwt_issuer``: the https origin of the issuer's hosted sign-in pages and token
        endpoint (a Cognito user pool domain, ``https://<prefix>.auth.<region>.amazoncognito.com``).
        The chat page then offers sign-in (``signIn`` in its ``config.json``) and may connect to
        the issuer and this origin. Default none: the page offers API keys only.
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
    interactions_retention_days: Annotated[int, Field(ge=1, le=3650)] = 90
    api: ApiConfig = field(default_factory=ApiConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    waf: WafConfig = field(default_factory=WafConfig)
    vpc: VpcConfig = field(default_factory=VpcConfig)
    monitoring: MonitoringConfig = field(default_factory=MonitoringConfig)
    nag_packs: tuple[Literal["HIPAA.Security", "NIST.800.53.R5"], ...] = ()
    models: dict[str, Any] | None = None
    models_parameter: Annotated[str, Field(pattern=r"^/[A-Za-z0-9_.\-/]+$")] | None = None
    jwt_issuer: Annotated[str, Field(min_length=1)] | None = None
    jwt_audience: Annotated[str, Field(min_length=1)] | None = None
    jwt_tenant_claim: Annotated[str, Field(min_length=1)] | None = None
    jwt_sign_in_origin: Annotated[str, Field(min_length=1)] | None = None

    def image_uri(self, model: ModelConfig) -> str:
        """``model``'s ECR image URI in this stack's region (resolved from the SDK's tables)."""
        return model.image_uri or resolve_image_uri(model.image, self.region)  # type: ignore[arg-type]

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
    def from_context(cls, raw: Mapping[str, Any] | str | None, *, stage: str | None = None) -> StrataConfig:
        """Parse and validate the context object for ``stage``; raise :class:`ConfigError` naming
        every problem.

        The object holds the settings every stage shares, ``stage`` (the default stage) and
        ``environments``: per stage, the values that differ, merged over the shared ones (objects
        merge key by key, anything else is replaced).
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
        merged = _for_stage(raw, stage)
        try:
            config = _ADAPTER.validate_python(merged)
        except ValidationError as exc:
            problems = [f"  {CONTEXT_KEY}.{_loc(err['loc'])}: {err['msg']}" for err in exc.errors()]
            raise ConfigError(
                f"invalid CDK context for stage {merged.get('stage')!r}:\n" + "\n".join(problems)
            ) from None
        problems = config._cross_field_problems()
        if problems:
            raise ConfigError(
                f"invalid CDK context for stage {config.stage!r}:\n" + "\n".join(f"  {p}" for p in problems)
            )
        return config

    def _cross_field_problems(self) -> list[str]:
        problems: list[str] = []
        for name, model in (("chat_model", self.chat_model), ("embedding_model", self.embedding_model)):
            problems.extend(_image_problems(f"{CONTEXT_KEY}.{name}", model, self.region))
        if self.chat_model.instance_type is None or self.chat_model.serverless is not None:
            problems.append(
                f"{CONTEXT_KEY}.chat_model: needs instance_type and no serverless (the chat model runs "
                "as an inference component on an instance; serverless endpoints cannot stream)"
            )
        scaling = self.chat_model.scaling
        if scaling.max_copies < scaling.min_copies:
            problems.append(
                f"{CONTEXT_KEY}.chat_model.scaling.max_copies: {scaling.max_copies} is below min_copies "
                f"({scaling.min_copies})"
            )
        if (self.embedding_model.instance_type is None) == (self.embedding_model.serverless is None):
            problems.append(f"{CONTEXT_KEY}.embedding_model: set exactly one of instance_type and serverless")
        if self.models is not None and self.models_parameter is not None:
            problems.append(f"{CONTEXT_KEY}.models_parameter: set either models or models_parameter, not both")
        if self.models is not None:
            try:
                parse_registry({"models": self.models}, source=f"{CONTEXT_KEY}")
            except ModelRegistryError as error:
                problems.append(str(error))
        problems.extend(self._jwt_problems())
        if self.region.startswith("cn-"):
            problems.append(
                f"{CONTEXT_KEY}.region: China regions publish the Lambda Web Adapter layer from other "
                "accounts; not supported yet"
            )
        if self.search.mode == "serverless":
            # The construct builds the collection and its policies (tests/infra/test_search.py).
            problems.append(
                f"{CONTEXT_KEY}.search.mode: serverless cannot ingest yet: vector search collections "
                "refuse writes that name their document id, and the chunk writer names each chunk's; "
                "use managed"
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
                for name in ("jwt_audience", "jwt_tenant_claim", "jwt_sign_in_origin")
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
        if self.jwt_sign_in_origin is not None and not _is_https_origin(self.jwt_sign_in_origin):
            problems.append(
                f"{CONTEXT_KEY}.jwt_sign_in_origin: {self.jwt_sign_in_origin!r} is not an https origin "
                "(https://host, no path, query or fragment; e.g. a Cognito user pool domain, "
                "https://<prefix>.auth.<region>.amazoncognito.com); the chat page signs in there"
            )
        return problems

    @staticmethod
    def ecr_repository(image_uri: str) -> tuple[str, str, str]:
        """``(account, region, repository)`` of a validated ECR image URI."""
        match = _ECR_IMAGE.match(image_uri)
        if match is None:
            raise ConfigError(f"{image_uri!r} is not an ECR image URI")
        return match["account"], match["region"], match["repository"]


def _is_https_origin(value: str) -> bool:
    """``https://host[:port]`` and nothing more (what a browser compares as an origin)."""
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018  (raises for a port that is not a number in range)
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and bool(parts.hostname)
        and parts.username is None
        and value == f"https://{parts.netloc}"
    )


def _for_stage(raw: Mapping[str, Any], stage: str | None) -> dict[str, Any]:
    """The shared settings with ``environments[stage]`` merged over them; ``stage`` defaults to
    the object's own ``stage``."""
    shared = {key: value for key, value in raw.items() if key != "environments"}
    environments = raw.get("environments") or {}
    if not isinstance(environments, Mapping):
        raise ConfigError(f"{CONTEXT_KEY}.environments must be an object of stages")
    stage = stage or shared.get("stage")
    if not isinstance(stage, str) or not stage:
        raise ConfigError(f"{CONTEXT_KEY}.stage: name the stage to synthesize (e.g. cdk synth -c stage=dev)")
    if environments and stage not in environments:
        raise ConfigError(
            f"{CONTEXT_KEY}.environments: no stage {stage!r}; the stages are {', '.join(sorted(environments))}"
        )
    overrides = environments.get(stage) or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{CONTEXT_KEY}.environments.{stage} must be an object")
    return _merged({**shared, "stage": stage}, overrides)


def _merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _image_problems(where: str, model: ModelConfig, region: str) -> list[str]:
    if (model.image is None) == (model.image_uri is None):
        return [f"{where}: set exactly one of image (framework and version) and image_uri"]
    if model.image is not None:
        try:
            resolve_image_uri(model.image, region)
        except ValueError as error:
            return [f"{where}.image: {error}"]
        return []
    match = _ECR_IMAGE.match(model.image_uri or "")
    if match is None:
        return [
            f"{where}.image_uri: {model.image_uri!r} is not an ECR image URI "
            "(<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>)"
        ]
    if match["region"] != region:
        return [
            f"{where}.image_uri: image is in {match['region']!r} but the stack deploys to {region!r}; "
            "SageMaker pulls images from its own region"
        ]
    return []


@functools.cache
def resolve_image_uri(image: ImageConfig, region: str) -> str:
    """The ECR URI of ``image`` in ``region``, from the SageMaker SDK's own image tables (offline).

    Raises ``ValueError`` (the SDK's message lists the versions it knows) for an unknown family,
    version or region.
    """
    from sagemaker.core import image_uris  # heavy (about 3 s): only when a model names an image

    return str(image_uris.retrieve(image.framework, region=region, version=image.version, image_scope="inference"))


def _loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<root>"


_ADAPTER: TypeAdapter[StrataConfig] = TypeAdapter(StrataConfig)
