"""``StrataStack``: the cloud side of Strata, composed from one construct per concern.

One stack per stage. The constructs are built in the order their dependencies run — network →
storage → data → search → models → secrets → functions → API → frontend → monitoring — and
each takes what it uses as props, so a construct never reaches into another. (Several stacks
would only add cross-stack exports between resources that are deployed, updated and deleted
together; the grants between them would make the exports cyclic.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack, Tags
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra_cdk.config import ModelConfig, StrataConfig
from infra_cdk.constructs.api import Api, ApiProps
from infra_cdk.constructs.frontend import Frontend, FrontendProps, rest_api_origin
from infra_cdk.constructs.functions import METRICS_NAMESPACE, Functions, FunctionsProps
from infra_cdk.constructs.lazy import lazy_string
from infra_cdk.constructs.models import (
    VARIANT_NAME,
    ChatModelProps,
    ContainerProps,
    EmbeddingModelProps,
    Models,
    ModelsProps,
)
from infra_cdk.constructs.monitoring import AlarmThresholds, Monitoring, MonitoringProps
from infra_cdk.constructs.network import Network, NetworkProps
from infra_cdk.constructs.search import Search, SearchProps
from infra_cdk.constructs.storage import Storage, StorageProps
from infra_cdk.constructs.tables import Tables, TablesProps
from strata.config.frontend import SignIn
from strata.config.resources import RESOURCES, StackResources

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ADMIN_TABLES = ("keys_table", "tenants_table", "prompts_table", "documents_table", "feedback_table")
"""Tables the ``strata keys|limits|tenants|prompts|report`` commands read and write."""
ADMIN_FIELDS = ("documents_bucket", "interactions_bucket", "key_pepper_secret", *ADMIN_TABLES)
"""The ``Settings`` fields the stack outputs for those commands (``Admin*``, see infra_cdk.outputs)."""


def admin_output_name(field: str) -> str:
    """The stack output carrying the value of the ``Settings`` field ``field``."""
    return "Admin" + "".join(part.capitalize() for part in field.split("_"))


class StrataStack(Stack):
    """Buckets and the ingest queue, tables, search, models, functions, the API, its frontend and
    its monitoring.

    Parameters
    ----------
    config
        The validated deployment configuration of one stage.
    resources
        Bucket, queue and table specs shared with the local stack. Default ``RESOURCES``.
    project_root
        Where ``functions/``, ``layers/strata`` and ``pyproject.toml`` are. Default: this repository.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StrataConfig,
        resources: StackResources = RESOURCES,
        project_root: Path = PROJECT_ROOT,
        **stack_kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **stack_kwargs)
        self.config = config
        self.resources = resources
        Tags.of(self).add("project", "strata")
        Tags.of(self).add("stage", config.stage)
        removal = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        retention = config.log_retention

        self.network = (
            Network(
                self,
                "Network",
                NetworkProps(max_azs=config.vpc.max_azs, nat_gateways=config.vpc.nat_gateways, log_retention=retention),
            )
            if config.vpc.enabled
            else None
        )
        vpc = self.network.vpc if self.network else None
        # The page's origin is known once its distribution exists, which needs the API's id and
        # the documents bucket's name: the bucket's CORS rule, the API's CORS settings and the
        # functions take it as a value resolved at synthesis.
        cors_origins = (lazy_string(lambda: self.frontend.origin),)
        self.storage = Storage(
            self,
            "Storage",
            StorageProps(
                bucket=resources.documents_bucket,
                interactions=resources.interactions_bucket,
                interactions_retention_days=config.interactions_retention_days,
                queue=resources.ingest_queue,
                removal_policy=removal,
                upload_origins=cors_origins,
                log_retention=retention,
            ),
        )
        self.tables = Tables(
            self,
            "Tables",
            TablesProps(specs=resources.tables, removal_policy=removal, deletion_protection=config.retain_data),
        )
        self.search = Search(
            self,
            "Search",
            SearchProps(
                index=config.search.index,
                domain_name=f"{config.prefix}-search",
                mode=config.search.mode,
                fine_grained_access=True,
                standby_replicas=config.search.standby_replicas,
                vpc=vpc,
                engine_version=config.search.engine_version,
                instance_type=config.search.instance_type,
                data_nodes=config.search.data_nodes,
                volume_size_gb=config.search.volume_size_gb,
                log_retention=retention,
                removal_policy=removal,
            ),
        )
        chat, embedding = config.chat_model, config.embedding_model
        self.models = Models(
            self,
            "Models",
            ModelsProps(
                chat=ChatModelProps(
                    endpoint_name=config.chat_endpoint_name,
                    container=_container(config, chat),
                    instance_type=chat.instance_type or "",
                    scaling=chat.scaling,
                    log_retention=retention,
                ),
                embedding=EmbeddingModelProps(
                    endpoint_name=config.embedding_endpoint_name,
                    container=_container(config, embedding),
                    serverless=embedding.serverless,
                    instance_type=embedding.instance_type,
                    instances=embedding.instances,
                    log_retention=retention,
                ),
            ),
        )
        # Keys the HMAC of every stored API key. Rotating it invalidates all keys: see docs/operations.
        self.key_pepper = secretsmanager.Secret(
            self,
            "KeyPepper",
            description="Strata: HMAC key for API key hashes",
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=48, exclude_punctuation=True),
            removal_policy=removal,
        )
        tables = {spec: self.tables.table(spec) for spec in resources.tables}
        self.functions = Functions(
            self,
            "Functions",
            FunctionsProps(
                project_root=project_root,
                bucket=self.storage.bucket,
                queue=self.storage.queue,
                dlq=self.storage.dlq,
                interactions_bucket=self.storage.interactions_bucket,
                keys_table=tables[resources.keys_table],
                documents_table=tables[resources.documents_table],
                breakers_table=tables[resources.breakers_table],
                response_cache_table=tables[resources.response_cache_table],
                tenants_table=tables[resources.tenants_table],
                rate_limits_table=tables[resources.rate_limits_table],
                prompts_table=tables[resources.prompts_table],
                feedback_table=tables[resources.feedback_table],
                tenant_prefix=resources.documents_bucket.prefix,
                chat_endpoint=self.models.chat,
                embedding_endpoint=self.models.embedding,
                search=self.search,
                key_pepper=self.key_pepper,
                jwt_issuer=config.jwt_issuer,
                jwt_audience=config.jwt_audience,
                jwt_tenant_claim=config.jwt_tenant_claim,
                models=config.models_document,
                models_parameter=config.models_parameter,
                chat_context_window=config.chat_context_window,
                architecture=config.architecture,
                lwa_layer_version=config.lwa_layer_version,
                chat_timeout_s=config.api.chat_timeout_s,
                ingest_source=resources.ingest_source,
                cors_origins=cors_origins,
                vpc=vpc,
                log_retention=retention,
            ),
        )
        self.api = Api(
            self,
            "Api",
            ApiProps(
                chat_function=self.functions.chat,
                api_function=self.functions.api,
                authorizer_function=self.functions.authorizer,
                stage_name=config.stage,
                throttle_rate_limit=config.api.throttle_rate_limit,
                throttle_burst_limit=config.api.throttle_burst_limit,
                authorizer_cache_ttl_s=config.api.authorizer_cache_ttl_s,
                chat_timeout_s=config.api.chat_timeout_s,
                waf_rate_limit_per_5_min=config.waf.rate_limit_per_5_min if config.waf.enabled else None,
                cors_origins=cors_origins,
                log_retention=retention,
            ),
        )
        self.frontend = Frontend(
            self,
            "Frontend",
            FrontendProps(
                api_base_url=f"{self.api.rest_api.url}v1",
                api_origin=rest_api_origin(self.api.rest_api),
                upload_origins=(self.storage.upload_origin,),
                sign_in=_sign_in(config),
                removal_policy=removal,
                log_retention=retention,
            ),
        )
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            MonitoringProps(
                functions={
                    "authorizer": self.functions.authorizer,
                    "api": self.functions.api,
                    "chat": self.functions.chat,
                    "ingest": self.functions.ingest,
                },
                rest_api=self.api.rest_api,
                ingest_queue=self.storage.queue,
                ingest_dlq=self.storage.dlq,
                chat_endpoint_name=self.models.chat.endpoint_name,
                chat_inference_component_name=self.models.chat.inference_component_name,
                scale_from_zero_alarm=self.models.chat.wake_alarm,
                embedding_endpoint_name=self.models.embedding.endpoint_name,
                chat_variant_name=VARIANT_NAME,
                embedding_variant_name=VARIANT_NAME,
                metrics_namespace=METRICS_NAMESPACE,
                alarm_email=config.monitoring.alarm_email,
                thresholds=AlarmThresholds(
                    server_error_rate_percent=config.monitoring.error_rate_percent,
                    p99_latency_ms=config.monitoring.p99_latency_ms,
                ),
            ),
        )

        CfnOutput(self, "ApiBaseUrl", value=f"{self.api.rest_api.url}v1", description="OpenAI base_url")
        CfnOutput(self, "FrontendUrl", value=self.frontend.origin, description="the chat page")
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn, description="subscribe to alarms")
        CfnOutput(self, "IngestDeadLetterQueueUrl", value=self.storage.dlq.queue_url)
        CfnOutput(self, "ChatEndpointName", value=self.models.chat.endpoint_name)
        CfnOutput(self, "ChatInferenceComponentName", value=self.models.chat.inference_component_name)
        CfnOutput(self, "EmbeddingEndpointName", value=self.models.embedding.endpoint_name)
        CfnOutput(self, "SearchEndpoint", value=self.search.endpoint_url)
        # What the `strata` admin commands need to run against this stage (infra_cdk.outputs).
        admin = {
            "documents_bucket": self.storage.bucket.bucket_name,
            "interactions_bucket": self.storage.interactions_bucket.bucket_name,
            "key_pepper_secret": self.key_pepper.secret_arn,
            **{field: tables[getattr(resources, field)].table_name for field in ADMIN_TABLES},
        }
        for field in ADMIN_FIELDS:
            CfnOutput(self, admin_output_name(field), value=admin[field], description=f"STRATA_{field.upper()}")


def _sign_in(config: StrataConfig) -> SignIn | None:
    """The page's sign-in, where the stage names a sign-in origin (else the page offers API keys)."""
    if config.jwt_issuer is None or config.jwt_audience is None or config.jwt_sign_in_origin is None:
        return None
    return SignIn(issuer=config.jwt_issuer, client_id=config.jwt_audience, origin=config.jwt_sign_in_origin)


def _container(config: StrataConfig, model: ModelConfig) -> ContainerProps:
    image_uri = config.image_uri(model)
    return ContainerProps(
        image_uri=image_uri,
        image_repository=StrataConfig.ecr_repository(image_uri),
        model_id=model.model_id,
        environment=model.environment,
        container_startup_timeout_s=model.container_startup_timeout_s,
        model_data_url=model.model_data_url,
    )
