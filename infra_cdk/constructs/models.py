"""The SageMaker models: chat generation as an autoscaled inference component, and embeddings.

**Chat** (vLLM in AWS's LMI container on a GPU instance): a ``CfnModel``, an endpoint whose one
variant has managed instance scaling, and the model as an **inference component** on it, so
Application Auto Scaling can move its copies — and, with scale to zero, the instances under them —
between zero and ``max_copies``:

- target tracking on ``SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution`` adds
  copies under load and removes them when idle, down to the minimum (0 with scale to zero);
- at zero copies an invocation fails with "no capacity" and SageMaker counts it in
  ``NoCapacityInvocationFailures``; an alarm on that metric fires a step-scaling policy that adds
  one copy, and managed instance scaling starts an instance for it (minutes). Meanwhile the chat
  path answers 503 with ``Retry-After`` and ``strata.waking``.

**Embeddings** (text-embeddings-inference): serverless inference (billed per request, nothing
while idle) or a fixed number of instances.

The function environment gets the endpoint names (``STRATA_CHAT_ENDPOINT``,
``STRATA_EMBEDDING_ENDPOINT``) and the component's (``STRATA_CHAT_INFERENCE_COMPONENT``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_applicationautoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra_cdk.config import ChatScalingConfig, ServerlessConfig

VARIANT_NAME = "AllTraffic"
INVOKE_ACTIONS = ("sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream")
COPY_COUNT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
NO_CAPACITY_METRIC = "NoCapacityInvocationFailures"


@dataclass(frozen=True, slots=True)
class ContainerProps:
    """What runs: the image and the model it serves.

    image_uri
        ECR image, in the stack's region.
    image_repository
        ``(account, region, repository)`` of ``image_uri``: the execution role may pull from it.
    model_id
        Passed to the container as ``HF_MODEL_ID`` (``/opt/ml/model`` when ``model_data_url`` is set).
    environment
        Extra container environment. Default none.
    container_startup_timeout_s
        Health-check grace period after the container starts. Default 900.
    model_data_url
        Optional ``s3://bucket/key`` (tar.gz) of model artifacts; read access is granted.
    """

    image_uri: str
    image_repository: tuple[str, str, str]
    model_id: str
    environment: Mapping[str, str] = field(default_factory=dict)
    container_startup_timeout_s: int = 900
    model_data_url: str | None = None


@dataclass(frozen=True, slots=True)
class ChatModelProps:
    """The chat endpoint.

    endpoint_name
        Lowercase endpoint name; the inference component is ``<endpoint_name>-model``.
    container
        See :class:`ContainerProps`.
    instance_type
        GPU instance type (``ml.g5.xlarge`` ...).
    scaling
        Copies, instances, target tracking and scale to zero (see ``ChatScalingConfig``).
    log_retention
        Retention of the endpoint's and the component's log groups. Default one month.
    """

    endpoint_name: str
    container: ContainerProps
    instance_type: str
    scaling: ChatScalingConfig = field(default_factory=ChatScalingConfig)
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


@dataclass(frozen=True, slots=True)
class EmbeddingModelProps:
    """The embedding endpoint: ``serverless`` or ``instance_type`` × ``instances``."""

    endpoint_name: str
    container: ContainerProps
    serverless: ServerlessConfig | None = None
    instance_type: str | None = None
    instances: int = 1
    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH


class _Endpoint(Construct):
    """What both endpoints share: the model, its image pull and log grants, the endpoint."""

    endpoint_name: str
    endpoint_arn: str

    def _model(self, role: iam.Role, container: ContainerProps, log_groups: list[str]) -> sagemaker.CfnModel:
        account, region, repository = container.image_repository
        ecr.Repository.from_repository_attributes(
            self,
            "ImageRepository",
            repository_arn=f"arn:{Aws.PARTITION}:ecr:{region}:{account}:repository/{repository}",
            repository_name=repository,
        ).grant_pull(role)
        self.log_groups = [
            logs.LogGroup(
                self,
                f"Logs{index}" if index else "Logs",
                log_group_name=name,
                retention=self._log_retention,
                removal_policy=RemovalPolicy.DESTROY,
            )
            for index, name in enumerate(log_groups)
        ]
        for group in self.log_groups:
            group.grant_write(role)
            group.grant(role, "logs:DescribeLogStreams")
        if container.model_data_url:
            bucket_name, _, key = container.model_data_url.removeprefix("s3://").partition("/")
            s3.Bucket.from_bucket_name(self, "ModelData", bucket_name).grant_read(role, key)
        model = sagemaker.CfnModel(
            self,
            "Model",
            execution_role_arn=role.role_arn,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=container.image_uri,
                mode="SingleModel",
                model_data_url=container.model_data_url,
                environment={"HF_MODEL_ID": container.model_id, **container.environment},
            ),
        )
        # The role's policy must exist before SageMaker pulls the image and writes logs.
        model.node.add_dependency(role)
        return model

    def _endpoint(self, name: str, config: sagemaker.CfnEndpointConfig) -> sagemaker.CfnEndpoint:
        endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint", endpoint_name=name, endpoint_config_name=config.attr_endpoint_config_name
        )
        for group in self.log_groups:
            endpoint.node.add_dependency(group)
        self.endpoint = endpoint
        self.endpoint_name = name
        self.endpoint_arn = endpoint.ref
        return endpoint

    def grant_invoke(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow buffered and response-streaming invocations of this endpoint only."""
        return iam.Grant.add_to_principal(
            grantee=grantee, actions=list(INVOKE_ACTIONS), resource_arns=[self.endpoint_arn]
        )


class ChatModel(_Endpoint):
    """The chat model as an inference component, with its autoscaling and its wake alarm.

    Attributes
    ----------
    endpoint_name / endpoint_arn
        The endpoint (``STRATA_CHAT_ENDPOINT``).
    inference_component_name
        ``STRATA_CHAT_INFERENCE_COMPONENT``: invocations name it.
    scalable_target
        Copies between ``min_capacity`` (0 with scale to zero) and ``max_copies``.
    wake_alarm
        ``NoCapacityInvocationFailures`` ≥ 1: fires the step-scaling policy that adds a copy.
        Only with scale to zero (``None`` otherwise).
    """

    def __init__(self, scope: Construct, construct_id: str, *, role: iam.Role, props: ChatModelProps) -> None:
        super().__init__(scope, construct_id)
        self._log_retention = props.log_retention
        scaling = props.scaling
        self.inference_component_name = f"{props.endpoint_name}-model"
        model = self._model(
            role,
            props.container,
            [
                f"/aws/sagemaker/Endpoints/{props.endpoint_name}",
                f"/aws/sagemaker/InferenceComponents/{self.inference_component_name}",
            ],
        )
        min_copies = 0 if scaling.scale_to_zero else scaling.min_copies
        config = sagemaker.CfnEndpointConfig(
            self,
            "Config",
            execution_role_arn=role.role_arn,  # inference components: the role sits on the endpoint
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    instance_type=props.instance_type,
                    initial_instance_count=max(1, min_copies),
                    managed_instance_scaling=sagemaker.CfnEndpointConfig.ManagedInstanceScalingProperty(
                        status="ENABLED",
                        min_instance_count=min_copies,
                        max_instance_count=scaling.max_instances or scaling.max_copies,
                    ),
                    # A new request goes to the copy with the fewest in flight: long generations
                    # do not queue behind each other on one copy.
                    routing_config=sagemaker.CfnEndpointConfig.RoutingConfigProperty(
                        routing_strategy="LEAST_OUTSTANDING_REQUESTS"
                    ),
                    container_startup_health_check_timeout_in_seconds=props.container.container_startup_timeout_s,
                )
            ],
        )
        config.node.add_dependency(role)
        endpoint = self._endpoint(props.endpoint_name, config)

        component = sagemaker.CfnInferenceComponent(
            self,
            "InferenceComponent",
            inference_component_name=self.inference_component_name,
            endpoint_name=endpoint.attr_endpoint_name,
            variant_name=VARIANT_NAME,
            specification=sagemaker.CfnInferenceComponent.InferenceComponentSpecificationProperty(
                model_name=model.attr_model_name,
                compute_resource_requirements=sagemaker.CfnInferenceComponent.InferenceComponentComputeResourceRequirementsProperty(
                    number_of_accelerator_devices_required=scaling.accelerators_per_copy or None,
                    min_memory_required_in_mb=scaling.memory_per_copy_mb,
                ),
                startup_parameters=sagemaker.CfnInferenceComponent.InferenceComponentStartupParametersProperty(
                    container_startup_health_check_timeout_in_seconds=props.container.container_startup_timeout_s,
                    model_data_download_timeout_in_seconds=props.container.container_startup_timeout_s,
                ),
            ),
            # One copy at deploy time, so the deployment proves the model starts; with scale to
            # zero, target tracking removes it once idle.
            runtime_config=sagemaker.CfnInferenceComponent.InferenceComponentRuntimeConfigProperty(
                copy_count=max(1, min_copies)
            ),
        )

        self.scalable_target = autoscaling.ScalableTarget(
            self,
            "Copies",
            service_namespace=autoscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"inference-component/{self.inference_component_name}",
            scalable_dimension=COPY_COUNT_DIMENSION,
            min_capacity=min_copies,
            max_capacity=scaling.max_copies,
        )
        self.scalable_target.node.add_dependency(component)
        self.scalable_target.scale_to_track_metric(
            "ConcurrentRequestsPerCopy",
            predefined_metric=autoscaling.PredefinedMetric.SAGEMAKER_INFERENCE_COMPONENT_CONCURRENT_REQUESTS_PER_COPY_HIGH_RESOLUTION,
            target_value=scaling.target_concurrent_requests_per_copy,
            scale_in_cooldown=Duration.seconds(scaling.scale_in_cooldown_s),
            scale_out_cooldown=Duration.seconds(scaling.scale_out_cooldown_s),
        )

        self.wake_alarm: cloudwatch.Alarm | None = None
        if scaling.scale_to_zero:
            wake = autoscaling.StepScalingAction(
                self,
                "Wake",
                scaling_target=self.scalable_target,
                adjustment_type=autoscaling.AdjustmentType.CHANGE_IN_CAPACITY,
                metric_aggregation_type=autoscaling.MetricAggregationType.MAXIMUM,
                cooldown=Duration.seconds(scaling.scale_out_cooldown_s),
            )
            wake.add_adjustment(adjustment=1, lower_bound=0)
            self.wake_alarm = cloudwatch.Alarm(
                self,
                "WakeAlarm",
                alarm_description=(
                    f"{self.inference_component_name} has no copy and was invoked: add one (scale from zero)"
                ),
                metric=self.no_capacity_failures(),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            self.wake_alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(wake))

    def no_capacity_failures(self) -> cloudwatch.Metric:
        """Invocations refused because the component had no copy (each one a reason to wake)."""
        return cloudwatch.Metric(
            namespace="AWS/SageMaker",
            metric_name=NO_CAPACITY_METRIC,
            dimensions_map={"InferenceComponentName": self.inference_component_name},
            statistic=cloudwatch.Stats.MAXIMUM,
            period=Duration.minutes(1),
        )


class EmbeddingModel(_Endpoint):
    """The embedding endpoint: one variant, serverless or on instances."""

    def __init__(self, scope: Construct, construct_id: str, *, role: iam.Role, props: EmbeddingModelProps) -> None:
        super().__init__(scope, construct_id)
        self._log_retention = props.log_retention
        self.inference_component_name = None
        model = self._model(role, props.container, [f"/aws/sagemaker/Endpoints/{props.endpoint_name}"])
        if props.serverless is not None:
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=model.attr_model_name,
                serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                    memory_size_in_mb=props.serverless.memory_mb,
                    max_concurrency=props.serverless.max_concurrency,
                ),
            )
        else:
            variant = sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=VARIANT_NAME,
                model_name=model.attr_model_name,
                instance_type=props.instance_type,
                initial_instance_count=props.instances,
                initial_variant_weight=1,
                container_startup_health_check_timeout_in_seconds=props.container.container_startup_timeout_s,
            )
        config = sagemaker.CfnEndpointConfig(self, "Config", production_variants=[variant])
        self._endpoint(props.endpoint_name, config)


@dataclass(frozen=True, slots=True)
class ModelsProps:
    """Props of :class:`Models`."""

    chat: ChatModelProps
    embedding: EmbeddingModelProps


class Models(Construct):
    """The two endpoints and the execution role they share.

    Attributes
    ----------
    role
        SageMaker execution role: pull the two images, write their log groups, publish metrics.
    chat / embedding
        :class:`ChatModel` and :class:`EmbeddingModel`.
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
        self.chat = ChatModel(self, "Chat", role=self.role, props=props.chat)
        self.embedding = EmbeddingModel(self, "Embedding", role=self.role, props=props.embedding)
