"""``StrataStack``: the cloud side of Strata, composed from one construct per concern."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, RemovalPolicy, Stack, Tags
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra_cdk.config import StrataConfig
from infra_cdk.constructs.api import Api, ApiProps
from infra_cdk.constructs.documents import Documents, DocumentsProps
from infra_cdk.constructs.functions import Functions, FunctionsProps
from infra_cdk.constructs.models import ModelEndpointProps, Models, ModelsProps
from infra_cdk.constructs.search import Search, SearchProps
from infra_cdk.constructs.tables import Tables, TablesProps
from strata.config.resources import RESOURCES, StackResources

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class StrataStack(Stack):
    """Documents bucket + ingest queue, tables, OpenSearch, SageMaker endpoints, Lambdas, REST API.

    Parameters
    ----------
    config
        The validated deployment configuration.
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

        self.documents = Documents(
            self,
            "Documents",
            DocumentsProps(bucket=resources.documents_bucket, queue=resources.ingest_queue, removal_policy=removal),
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
                engine_version=config.search.engine_version,
                instance_type=config.search.instance_type,
                data_nodes=config.search.data_nodes,
                volume_size_gb=config.search.volume_size_gb,
                log_retention=retention,
                removal_policy=removal,
            ),
        )
        self.models = Models(
            self,
            "Models",
            ModelsProps(
                chat=_endpoint_props(config, "chat", retention),
                embedding=_endpoint_props(config, "embedding", retention),
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
        self.functions = Functions(
            self,
            "Functions",
            FunctionsProps(
                project_root=project_root,
                bucket=self.documents.bucket,
                queue=self.documents.queue,
                dlq=self.documents.dlq,
                keys_table=self.tables.table(resources.keys_table),
                documents_table=self.tables.table(resources.documents_table),
                breakers_table=self.tables.table(resources.breakers_table),
                response_cache_table=self.tables.table(resources.response_cache_table),
                tenants_table=self.tables.table(resources.tenants_table),
                rate_limits_table=self.tables.table(resources.rate_limits_table),
                prompts_table=self.tables.table(resources.prompts_table),
                feedback_table=self.tables.table(resources.feedback_table),
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
                ingest_timeout_s=config.ingest.timeout_s,
                ingest_batch_size=config.ingest.batch_size,
                ingest_max_concurrency=config.ingest.max_concurrency,
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
                log_retention=retention,
            ),
        )

        CfnOutput(self, "ApiBaseUrl", value=f"{self.api.rest_api.url}v1", description="OpenAI base_url")
        CfnOutput(self, "DocumentsBucketName", value=self.documents.bucket.bucket_name)
        CfnOutput(self, "IngestDeadLetterQueueUrl", value=self.documents.dlq.queue_url)
        CfnOutput(self, "ChatEndpointName", value=self.models.chat.endpoint_name)
        CfnOutput(self, "EmbeddingEndpointName", value=self.models.embedding.endpoint_name)
        CfnOutput(self, "SearchEndpoint", value=self.search.endpoint_url)


def _endpoint_props(config: StrataConfig, which: str, retention: logs.RetentionDays) -> ModelEndpointProps:
    model = config.chat_model if which == "chat" else config.embedding_model
    name = config.chat_endpoint_name if which == "chat" else config.embedding_endpoint_name
    return ModelEndpointProps(
        endpoint_name=name,
        image_uri=model.image_uri,
        image_repository=StrataConfig.ecr_repository(model.image_uri),
        instance_type=model.instance_type,
        model_id=model.model_id,
        environment=model.environment,
        initial_instance_count=model.initial_instance_count,
        container_startup_timeout_s=model.container_startup_timeout_s,
        model_data_url=model.model_data_url,
        log_retention=retention,
    )
