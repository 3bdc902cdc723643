"""The Lambdas, the shared ``strata`` layer, their environment and their grants.

- ``authorizer``: ``functions.authorizer.app.handler``, the API Gateway REQUEST authorizer.
- ``api``: ``functions.api.app.handler`` (Mangum), the buffered API Gateway routes.
- ``chat``: ``functions/chat/run.sh``, uvicorn under the Lambda Web Adapter in response-stream mode.
- ``ingest``: ``functions.ingest.app.handler``, SQS batches with partial batch failures.
- ``search_bootstrap``: ``functions.search_bootstrap.app.handler``, the deploy-time custom resource
  that creates the chunk index and its pipeline (and maps the roles with fine-grained access).

Every function gets the same ``STRATA_*`` resource names (a missing name would silently fall back
to the local default); what each may *do* is limited by its grants:

==============  ==========================================================================
function        grants
==============  ==========================================================================
authorizer      read keys, tenants (``BatchGetItem`` included); read the key pepper secret
api             read/write keys, tenants, rate limits, prompts, feedback; read documents and
                ``UpdateItem`` on them (a deletion marks its record); read breakers;
                ``s3:PutObject`` (it signs presigned uploads) and ``s3:DeleteObject`` on the
                tenant prefix; read the key pepper secret (``POST /v1/keys`` hashes);
                invoke the embedding endpoint; read the chunk index (``POST /v1/search``);
                read the models parameter if one is set
chat            read/write rate limits, breakers, response cache; read prompts; invoke the
                chat and embedding endpoints (and the registry's other targets); read the
                chunk index; ``s3:PutObject`` under the interaction-log bucket's prefix;
                read the models parameter if one is set
ingest          read the tenant prefix of the bucket, read/write/delete its staging prefix;
                read/write documents and the chunk index; read tenants; invoke the
                embedding endpoint; consume the ingest queue, send to it and to its DLQ
search_         ``es:ESHttpGet/Head/Put`` on the index, its mapping, the pipeline and (with
bootstrap       fine-grained access) the two role mappings; the domain's master user
==============  ==========================================================================

The key pepper never enters an environment: authorizer and api get the secret's ARN
(``STRATA_KEY_PEPPER_SECRET``) and read the value at cold start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import AssetHashType, BundlingOptions, Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra_cdk.bundling import LayerBundler, SourceTreeBundler, find_python
from infra_cdk.constructs.environment import setting_env
from infra_cdk.constructs.models import INVOKE_ACTIONS, ChatModel, EmbeddingModel
from infra_cdk.constructs.search import BOOTSTRAP_HANDLER, BOOTSTRAP_MEMORY_MB, BOOTSTRAP_TIMEOUT_S, Search
from strata.config.resources import RESOURCES, EventSourceSpec
from strata.config.settings import Settings
from strata.inference.registry import ModelRegistry, parse_registry

RUNTIME = lambda_.Runtime.PYTHON_3_12
PYTHON_VERSION = "3.12"
CROSS_REGION_PROFILES = ("us", "eu", "apac", "global")
"""Prefixes of Bedrock's cross-region inference profile ids (``us.anthropic.claude-…``)."""
LWA_ACCOUNT = "753240598075"
"""AWS account that publishes the Lambda Web Adapter layers in the commercial regions."""
LWA_LAYER_NAMES = {"arm64": "LambdaAdapterLayerArm64", "x86_64": "LambdaAdapterLayerX86"}
CHAT_PORT = "8000"
CHAT_PYTHONPATH = "/opt/python:/var/task:/var/runtime"
METRICS_NAMESPACE: str = Settings.model_fields["metrics_namespace"].default
"""CloudWatch namespace of the functions' EMF metrics: the library's default, so that Powertools
(``POWERTOOLS_METRICS_NAMESPACE``) and Strata's request log (``STRATA_METRICS_NAMESPACE``) agree."""


@dataclass(frozen=True, slots=True)
class FunctionsProps:
    """Props of :class:`Functions`.

    project_root
        Repository root: ``functions/``, ``layers/strata`` and ``pyproject.toml`` are read from it.
    bucket, queue, dlq
        The document drop (names go into the environment; grants as described per function).
    keys_table, documents_table, breakers_table, response_cache_table, tenants_table,
    rate_limits_table, prompts_table, feedback_table
        The tables, one per ``Settings`` field of the same name (see :attr:`tables`).
    tenant_prefix
        Key prefix of tenant documents in the bucket (``STRATA_TENANT_PREFIX``).
    chat_endpoint, embedding_endpoint, search
        Model endpoints and the vector store.
    models
        The model registry as a JSON document (``STRATA_MODELS``); ``None``: the one chat endpoint.
    models_parameter
        Or the name of an SSM parameter holding that document (``STRATA_MODELS_PARAMETER``);
        chat and api may read it.
    chat_context_window
        That endpoint's context window when ``models`` is ``None`` (its tokenizer is estimated).
    key_pepper
        Secret keying the API-key hashes. Its ARN goes into ``STRATA_KEY_PEPPER_SECRET`` of the
        authorizer and the api function, which may read it; its value goes into no environment.
    jwt_issuer / jwt_audience / jwt_tenant_claim
        Optional JWT sign-in for the authorizer (``STRATA_JWT_*``): the issuer (an https URL), the
        audience (app client id) and the claim naming the tenant. Default none: API keys only.
    metrics_namespace
        CloudWatch namespace of the EMF metrics. Default :data:`METRICS_NAMESPACE`.
    architecture
        ``arm64`` (default) or ``x86_64``; picks the Lambda Web Adapter layer and the wheels.
    lwa_layer_version
        Version of the public Lambda Web Adapter layer. Default 30.
    interactions_bucket
        The interaction log's bucket: chat writes to it (``s3:PutObject`` under its prefix only).
    chat_timeout_s
        Chat function timeout. Default 300.
    ingest_source
        The ingest function's timeout and its SQS event source (batch size, maximum concurrency,
        partial batch failures): ``RESOURCES.ingest_source``, which the local poller reads too.
    cors_origins
        Browser origins allowed to call the API (the frontend's): ``STRATA_CORS_ORIGINS``.
    vpc
        Place the functions in this VPC's private subnets. Default none.
    log_retention
        Retention of the function log groups. Default one month.
    """

    project_root: Path
    bucket: s3.IBucket
    queue: sqs.IQueue
    dlq: sqs.IQueue
    keys_table: dynamodb.ITable
    documents_table: dynamodb.ITable
    breakers_table: dynamodb.ITable
    response_cache_table: dynamodb.ITable
    tenants_table: dynamodb.ITable
    rate_limits_table: dynamodb.ITable
    prompts_table: dynamodb.ITable
    feedback_table: dynamodb.ITable
    tenant_prefix: str
    interactions_bucket: s3.IBucket
    chat_endpoint: ChatModel
    embedding_endpoint: EmbeddingModel
    search: Search
    key_pepper: secretsmanager.ISecret
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_tenant_claim: str | None = None
    models: str | None = None
    models_parameter: str | None = None
    chat_context_window: int = 4096
    architecture: str = "arm64"
    lwa_layer_version: int = 30
    chat_timeout_s: int = 300
    ingest_source: EventSourceSpec = RESOURCES.ingest_source
    cors_origins: tuple[str, ...] = ()
    vpc: ec2.IVpc | None = None
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    metrics_namespace: str = METRICS_NAMESPACE

    @property
    def tables(self) -> dict[str, dynamodb.ITable]:
        """Every table by its ``Settings`` field (``keys_table`` ...), whose variable names it."""
        return {
            "keys_table": self.keys_table,
            "documents_table": self.documents_table,
            "breakers_table": self.breakers_table,
            "response_cache_table": self.response_cache_table,
            "tenants_table": self.tenants_table,
            "rate_limits_table": self.rate_limits_table,
            "prompts_table": self.prompts_table,
            "feedback_table": self.feedback_table,
        }

    @property
    def jwt_environment(self) -> dict[str, str]:
        """The authorizer's ``STRATA_JWT_*`` variables; empty when JWT sign-in is off."""
        values = {
            "jwt_issuer": self.jwt_issuer,
            "jwt_audience": self.jwt_audience,
            "jwt_tenant_claim": self.jwt_tenant_claim,
        }
        return {setting_env(name): value for name, value in values.items() if value}


class Functions(Construct):
    """The Lambdas and the layer they share (the module docstring has the grant matrix).

    Bucket grants cover only objects under the tenant prefix.

    Attributes
    ----------
    layer
        ``python/strata`` (without ``strata.local``) plus the project's dependencies for Linux.
    authorizer
        Resolves an API key (or JWT) to a tenant and its limits: reads the keys and tenants
        tables and the key pepper secret.
    api
        Buffered routes: manages keys (``/v1/keys``, hashing with the pepper), tenant limits
        (``/v1/limits``), prompts, feedback and usage (rate limits); reads the document registry
        and marks deletions in it; signs presigned uploads (``s3:PutObject``) and deletes
        documents (``s3:DeleteObject``) under the tenant prefix; invokes the embedding endpoint
        (``/v1/embeddings``).
    chat
        Streams completions: admits requests through the rate-limit table, reads the tenant's
        prompts, invokes the chat and embedding endpoints, queries the chunk index, shares the
        circuit breakers and the response cache through their tables.
    ingest
        Reads the bucket, writes the documents table and the chunk index, invokes the embedding
        endpoint; fed by the ingest queue with partial batch failure reporting.
    """

    def __init__(self, scope: Construct, construct_id: str, props: FunctionsProps) -> None:
        super().__init__(scope, construct_id)
        self._props = props
        self._architecture = {
            "arm64": lambda_.Architecture.ARM_64,
            "x86_64": lambda_.Architecture.X86_64,
        }[props.architecture]
        root = props.project_root

        self.layer = lambda_.LayerVersion(
            self,
            "StrataLayer",
            description="strata package and its dependencies",
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[self._architecture],
            code=lambda_.Code.from_asset(
                str(root),
                asset_hash_type=AssetHashType.OUTPUT,
                bundling=BundlingOptions(
                    image=RUNTIME.bundling_image,  # required by the API; local bundling never falls back
                    local=LayerBundler(
                        project_root=root,
                        architecture=props.architecture,
                        python_version=PYTHON_VERSION,
                        # Lambda's /opt is read-only: without shipped bytecode every cold start
                        # compiles the layer again (2.3-2.8x the import time, bench/RESULTS.md).
                        # Needs a Python 3.12 on this machine; without one the layer has none.
                        bytecode_python=find_python(PYTHON_VERSION),
                    ),
                ),
            ),
        )
        self._code = lambda_.Code.from_asset(
            str(root / "functions"),
            asset_hash_type=AssetHashType.OUTPUT,
            bundling=BundlingOptions(
                image=RUNTIME.bundling_image,
                local=SourceTreeBundler(source=root / "functions"),
            ),
        )
        stack = Stack.of(self)
        self._environment = {
            setting_env("aws_region"): stack.region,
            setting_env("documents_bucket"): props.bucket.bucket_name,
            setting_env("tenant_prefix"): props.tenant_prefix,
            setting_env("ingest_queue"): props.queue.queue_name,
            setting_env("ingest_dlq"): props.dlq.queue_name,
            setting_env("interactions_bucket"): props.interactions_bucket.bucket_name,
            **{setting_env(field): table.table_name for field, table in props.tables.items()},
            setting_env("chat_endpoint"): props.chat_endpoint.endpoint_name,
            setting_env("chat_inference_component"): props.chat_endpoint.inference_component_name,
            setting_env("chat_context_window"): str(props.chat_context_window),
            setting_env("chat_tokenizer"): "",  # the local model's tokenizer is not the deployed one
            setting_env("embedding_endpoint"): props.embedding_endpoint.endpoint_name,
            **props.search.environment,
            # One namespace for Powertools' metrics and the library's request log.
            setting_env("metrics_namespace"): props.metrics_namespace,
            "POWERTOOLS_METRICS_NAMESPACE": props.metrics_namespace,
        }
        if props.cors_origins:
            self._environment[setting_env("cors_origins")] = ",".join(props.cors_origins)
        if props.models:
            self._environment[setting_env("models")] = props.models
        if props.models_parameter:
            self._environment[setting_env("models_parameter")] = props.models_parameter

        self.authorizer = self._function(
            "Authorizer",
            handler="functions.authorizer.app.handler",
            memory_mb=256,
            timeout_s=10,
            environment={**self._pepper_environment(), **props.jwt_environment},
        )
        # grant_read_data includes BatchGetItem: a key and its tenant's limits may come in one call.
        props.keys_table.grant_read_data(self.authorizer)
        props.tenants_table.grant_read_data(self.authorizer)
        props.key_pepper.grant_read(self.authorizer)

        self.api = self._function(
            "Api",
            handler="functions.api.app.handler",
            memory_mb=1024,
            timeout_s=29,
            environment=self._pepper_environment(),  # POST /v1/keys hashes the keys it creates
        )
        props.key_pepper.grant_read(self.api)
        for table in (
            props.keys_table,
            props.tenants_table,
            props.rate_limits_table,
            props.prompts_table,
            props.feedback_table,
        ):
            table.grant_read_write_data(self.api)
        props.documents_table.grant_read_data(self.api)
        # DELETE /v1/documents/{id} marks the record "deleting"; only ingest puts and deletes records.
        props.documents_table.grant(self.api, "dynamodb:UpdateItem")
        props.breakers_table.grant_read_data(self.api)  # /healthz reports each target's breaker
        self._grant_tenant_objects(self.api)
        props.embedding_endpoint.grant_invoke(self.api)
        props.search.grant_read(self.api)  # POST /v1/search

        self.chat = self._function(
            "Chat",
            handler="functions/chat/run.sh",
            memory_mb=1024,
            timeout_s=props.chat_timeout_s,
            layers=[self._web_adapter_layer()],
            environment={
                "AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap",
                "AWS_LWA_INVOKE_MODE": "response_stream",
                "PORT": CHAT_PORT,
                # run.sh starts a plain `python`: only the Lambda runtime's own bootstrap would add the
                # layer (/opt/python) to sys.path. Layer first, then the code, then the runtime.
                "PYTHONPATH": CHAT_PYTHONPATH,
            },
        )
        props.chat_endpoint.grant_invoke(self.chat)
        props.embedding_endpoint.grant_invoke(self.chat)
        props.breakers_table.grant_read_write_data(self.chat)
        props.response_cache_table.grant_read_write_data(self.chat)
        props.rate_limits_table.grant_read_write_data(self.chat)  # admit, then settle the reservation
        props.prompts_table.grant_read_data(self.chat)  # renders the tenant's prompt versions
        if props.models:
            self._grant_model_targets(parse_registry(json.loads(props.models), source="models"))
        if props.models_parameter:
            parameter = ssm.StringParameter.from_string_parameter_name(self, "ModelsParameter", props.models_parameter)
            for function in (self.chat, self.api):
                parameter.grant_read(function)
        props.search.grant_read(self.chat)
        # The interaction log (strata.interactions): write-only, under its prefix.
        iam.Grant.add_to_principal(
            grantee=self.chat,
            actions=["s3:PutObject"],
            resource_arns=[props.interactions_bucket.arn_for_objects(f"{RESOURCES.interactions_bucket.prefix}*")],
        )

        source = props.ingest_source
        self.ingest = self._function(
            "Ingest", handler="functions.ingest.app.handler", memory_mb=2048, timeout_s=source.function_timeout_s
        )
        props.bucket.grant_read(self.ingest, f"{props.tenant_prefix}*")
        # A long document's parts are staged outside the tenant prefix (no event fires for them).
        staging = RESOURCES.documents_bucket.staging_prefix
        iam.Grant.add_to_principal(
            grantee=self.ingest,
            actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            resource_arns=[props.bucket.arn_for_objects(f"{staging}*")],
        )
        self.ingest.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[props.bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{staging}*"]}},
            )
        )
        # Continuations go to the back of the ingest queue; permanent failures straight to the DLQ.
        props.queue.grant_send_messages(self.ingest)
        props.dlq.grant_send_messages(self.ingest)
        props.tenants_table.grant_read_data(self.ingest)  # a tenant's own chunk size
        # Deletions look a document up by its key before removing it, hence read as well as write.
        props.documents_table.grant_read_write_data(self.ingest)
        props.embedding_endpoint.grant_invoke(self.ingest)
        props.search.grant_read_write(self.ingest)
        self.ingest.add_event_source(
            event_sources.SqsEventSource(
                props.queue,
                batch_size=source.batch_size,
                max_concurrency=source.max_concurrency,
                report_batch_item_failures=source.report_batch_item_failures,
            )
        )

        # Creates the chunk index and its hybrid pipeline at deploy time (and, with fine-grained
        # access, maps the roles above to read or write roles on that index only).
        self.search_bootstrap = self._function(
            "SearchBootstrap", handler=BOOTSTRAP_HANDLER, memory_mb=BOOTSTRAP_MEMORY_MB, timeout_s=BOOTSTRAP_TIMEOUT_S
        )
        props.search.add_bootstrap(self.search_bootstrap)

    def _pepper_environment(self) -> dict[str, str]:
        # The ARN only: the value is read at cold start, so it never shows in the function's
        # configuration (GetFunctionConfiguration) or in the template.
        return {setting_env("key_pepper_secret"): self._props.key_pepper.secret_arn}

    def _grant_tenant_objects(self, function: lambda_.Function) -> None:
        """Exactly ``s3:PutObject`` and ``s3:DeleteObject`` on objects under the tenant prefix.

        Not ``grant_put``/``grant_delete``: those add legal hold, retention, tagging and
        ``DeleteObjectVersion``, which on the versioned bucket would erase a document's history.
        A presigned POST is authorized with its signer's permissions, hence ``PutObject`` here.
        """
        iam.Grant.add_to_principal(
            grantee=function,
            actions=["s3:PutObject", "s3:DeleteObject"],
            resource_arns=[self._props.bucket.arn_for_objects(f"{self._props.tenant_prefix}*")],
        )

    def _grant_model_targets(self, registry: ModelRegistry) -> None:
        """Chat may call the registry's other targets: SageMaker endpoints and Bedrock models."""
        stack = Stack.of(self)
        endpoints = sorted(
            {t.endpoint for t in registry.models.values() if t.provider == "sagemaker" and t.endpoint}
            - {self._props.chat_endpoint.endpoint_name}
        )
        if endpoints:
            self.chat.add_to_role_policy(
                iam.PolicyStatement(
                    actions=list(INVOKE_ACTIONS),
                    resources=[
                        stack.format_arn(service="sagemaker", resource="endpoint", resource_name=name.lower())
                        for name in endpoints
                    ],
                )
            )
        bedrock = sorted({t.model for t in registry.models.values() if t.provider == "bedrock" and t.model})
        if bedrock:
            resources = []
            for model in bedrock:
                prefix, _, base_model = model.partition(".")
                if prefix in CROSS_REGION_PROFILES:  # an inference profile routes to the model in several regions
                    resources.append(
                        stack.format_arn(service="bedrock", resource="inference-profile", resource_name=model)
                    )
                    resources.append(f"arn:{stack.partition}:bedrock:*::foundation-model/{base_model}")
                else:
                    resources.append(f"arn:{stack.partition}:bedrock:{stack.region}::foundation-model/{model}")
            self.chat.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["bedrock:InvokeModel", "bedrock:InvokeModelWithResponseStream"], resources=resources
                )
            )

    @property
    def all(self) -> tuple[lambda_.Function, ...]:
        return (self.authorizer, self.api, self.chat, self.ingest, self.search_bootstrap)

    def _web_adapter_layer(self) -> lambda_.ILayerVersion:
        stack = Stack.of(self)
        name = LWA_LAYER_NAMES[self._props.architecture]
        arn = f"arn:{stack.partition}:lambda:{stack.region}:{LWA_ACCOUNT}:layer:{name}:{self._props.lwa_layer_version}"
        return lambda_.LayerVersion.from_layer_version_arn(self, "WebAdapterLayer", arn)

    def _function(
        self,
        construct_id: str,
        *,
        handler: str,
        memory_mb: int,
        timeout_s: int,
        layers: list[lambda_.ILayerVersion] | None = None,
        environment: dict[str, str] | None = None,
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{construct_id}Logs",
            retention=self._props.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        return lambda_.Function(
            self,
            construct_id,
            description=f"Strata {construct_id.lower()}",
            runtime=RUNTIME,
            architecture=self._architecture,
            code=self._code,
            handler=handler,
            layers=[self.layer, *(layers or [])],
            memory_size=memory_mb,
            timeout=Duration.seconds(timeout_s),
            environment={
                **self._environment,
                "POWERTOOLS_SERVICE_NAME": f"strata-{construct_id.lower()}",
                **(environment or {}),
            },
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            vpc=self._props.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
            if self._props.vpc
            else None,
        )
