"""SageMaker real-time endpoints: chat generation (vLLM / LMI on GPU) and embeddings (TEI).

Each endpoint is a ``CfnModel`` → ``CfnEndpointConfig`` (one production variant, ``AllTraffic``)
→ ``CfnEndpoint`` with a fixed, lowercase name: the name the Lambdas receive as
``STRATA_CHAT_ENDPOINT`` / ``STRATA_EMBEDDING_ENDPOINT``.

Autoscaling seam: a later issue registers ``ModelEndpoint.scalable_resource_id``
(``endpoint/<name>/variant/AllTraffic``) with Application Auto Scaling (target tracking on
invocations per instance, scale to zero with inference components). Nothing here needs to change
for that beyond moving to inference components.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

VARIANT_NAME = "AllTraffic"
INVOKE_ACTIONS = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream")


@dataclass(frozen=True, slots=True)
class ModelEndpointProps:
    """One endpoint.

    endpoint_name
        Lowercase endpoint name (also names the ``/aws/sagemaker/Endpoints/<name>`` log group).
    image_uri
        ECR image, in the stack's region.
    image_repository
        ``(account, region, repository)`` of ``image_uri``: the execution role may pull from it.
    instance_type
        ``ml.*`` hosting instance type.
    model_id
        Passed to the container as ``HF_MODEL_ID`` (``/opt/ml/model`` when ``model_data_url`` is set).
    environment
        Extra container environment. Default none.
    initial_instance_count
        Default 1.
    container_startup_timeout_s
        Health-check grace period after the container starts. Default 900.
    model_data_url
        Optional ``s3://bucket/key`` (tar.gz) of model artifacts; read access is granted.
    log_retention
        Retention of the endpoint's log group. Default one month.
    """

    endpoint_name: str
    image_uri: str
    image_repository: tuple[str, str, str]
    instance_type: str
    model_id: str
    environment: Mapping[str, str] = field(default_factory=dict)
    initial_instance_count: int = 1
    container_startup_timeout_s: int = 900
    model_data_url: str | None = None
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


class ModelEndpoint(Construct):
    """A SageMaker model, its endpoint configuration and the endpoint.

    Attributes
    ----------
    endpoint_name
        The endpoint's name, for ``STRATA_*_ENDPOINT``.
    endpoint_arn
        The endpoint's ARN (``Ref`` of the endpoint).
    scalable_resource_id
        ``endpoint/<name>/variant/AllTraffic``: the Application Auto Scaling resource id.
    """

    def __init__(self, scope: Construct, construct_id: str, *, role: iam.Role, props: ModelEndpointProps) -> None:
        super().__init__(scope, construct_id)
        account, region, repository = props.image_repository
        ecr.Repository.from_repository_attributes(
            self,
            "ImageRepository",
            repository_arn=f"arn:{Aws.PARTITION}:ecr:{region}:{account}:repository/{repository}",
            repository_name=repository,
        ).grant_pull(role)

        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/sagemaker/Endpoints/{props.endpoint_name}",
            retention=props.log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        log_group.grant_write(role)
        log_group.grant(role, "logs:DescribeLogStreams")

        if props.model_data_url:
            bucket_name, _, key = props.model_data_url.removeprefix("s3://").partition("/")
            s3.Bucket.from_bucket_name(self, "ModelData", bucket_name).grant_read(role, key)

        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=props.image_uri,
                mode="SingleModel",
                model_data_url=props.model_data_url,
                environment={"HF_MODEL_ID": props.model_id, **props.environment},
            ),
        )
        # The role's policy must exist before SageMaker pulls the image and writes logs.
        model.node.add_dependency(role)

        config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=model.attr_model_name,
                    instance_type=props.instance_type,
                    initial_instance_count=props.initial_instance_count,
                    initial_variant_weight=1,
                    container_startup_health_check_timeout_in_seconds=props.container_startup_timeout_s,
                )
            ],
        )
        self.endpoint = sagemaker.CfnEndpoint(
            self,
            "Endpoint",
            endpoint_name=props.endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
        )
        self.endpoint.node.add_dependency(log_group)

        self.endpoint_name = props.endpoint_name
        self.endpoint_arn = self.endpoint.ref
        self.scalable_resource_id = f"endpoint/{props.endpoint_name}/variant/{VARIANT_NAME}"

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow buffered and response-streaming invocations of this endpoint only."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=list(INVOKE_ACTIONS), resource_arns=[self.endpoint_arn]
        )


@dataclass(frozen=True, slots=True)
class ModelsProps:
    """Props of :class:`Models`: the chat (generation) and embedding endpoints."""

    chat: ModelEndpointProps
    embedding: ModelEndpointProps


class Models(Construct):
    """The two endpoints and the execution role they share.

    Attributes
    ----------
    role
        SageMaker execution role: pull the two images, write the two log groups, publish metrics.
    chat / embedding
        The :class:`ModelEndpoint` s.
    """

    def __init__(self, scope: Construct, construct_id: str, props: ModelsProps) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "ExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            description="Strata SageMaker endpoints: pull images, write logs and metrics",
        )
        cloudwatch.Metric.grant_put_metric_data(self.role)
        self.chat = ModelEndpoint(self, "Chat", role=self.role, props=props.chat)
        self.embedding = ModelEndpoint(self, "Embedding", role=self.role, props=props.embedding)
