"""Monitoring: one CloudWatch dashboard, the alarms an operator must hear about, and their SNS topic.

The application's own figures are read by the names :mod:`strata.observability.metrics` defines
(the same module the gateway emits them with) and with the dimensions they are emitted with:

- request metrics carry ``service``, ``route`` and ``model`` (the model the client named, so its
  values are not known here): the dashboard finds them with ``SEARCH`` over that exact schema,
  one line per route and model;
- ``BreakerOpen`` carries ``service`` and ``target`` (``SEARCH`` too); the ingest metrics carry
  ``service`` alone, so they are plain metrics.

A ``SEARCH`` cannot back an alarm, so every alarm watches an AWS service metric with fixed
dimensions: API Gateway (stage), SQS (the DLQ), SageMaker (the endpoints, or the chat model's
inference component: an endpoint that hosts components publishes its invocation metrics per
``InferenceComponentName``).

- ``api_5xx_rate``: API Gateway ``5XXError`` average (the share of requests answered 5xx) at or
  over ``server_error_rate_percent``;
- ``api_p99_latency``: API Gateway ``Latency`` p99 at or over ``p99_latency_ms`` (whole
  responses: a stream counts until its last byte);
- ``ingest_dlq_not_empty``: the DLQ holds a message (a permanent or exhausted ingest failure);
- ``chat_endpoint_errors`` / ``embedding_endpoint_errors``: a model answers ``endpoint_errors``
  5xx in a period;
- ``chat_scale_from_zero`` (with an inference component): an invocation found no copy
  (``NoCapacityInvocationFailures``): the model is waking up, answers wait minutes.

Missing data never alarms: an idle deployment publishes nothing.

The topic is encrypted with a customer managed KMS key (rotated): CloudWatch cannot publish to a
topic under the AWS managed ``alias/aws/sns`` key, whose policy cannot grant it. Its policy
denies non-TLS access and lets this account's alarms publish.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from strata.config.metrics import (
    BREAKER_DIMENSIONS,
    DEFAULT_NAMESPACE,
    GATEWAY_SERVICE,
    INGEST_SERVICE,
    REQUEST_DIMENSIONS,
    BreakerMetric,
    Dimension,
    IngestMetric,
    RequestMetric,
)

SAGEMAKER_NAMESPACE = "AWS/SageMaker"
DEFAULT_VARIANT_NAME = "AllTraffic"
"""The production variant's name in ``infra_cdk.constructs.models`` (``VARIANT_NAME``)."""

# Dynamic labels: one line per route and model the SEARCH finds.
_ROUTE_MODEL_LABEL = "${PROP('Dim.route')} ${PROP('Dim.model')}"


@dataclass(frozen=True, slots=True)
class AlarmThresholds:
    """When each alarm fires; every alarm evaluates ``evaluation_periods`` of ``period_minutes``.

    server_error_rate_percent
        Share of API requests answered 5xx (API Gateway ``5XXError`` average). Default 5 %.
    p99_latency_ms
        API Gateway ``Latency`` p99, whole responses (streams included). Default 10 s.
    endpoint_errors
        5xx invocations of a model endpoint in a period. Default 5.
    dlq_messages
        Messages visible in the ingest DLQ. Default 1: any.
    scale_from_zero_failures
        ``NoCapacityInvocationFailures`` in a minute (this alarm is per minute, as the scaling
        alarm that wakes the model). Default 1: any.
    """

    server_error_rate_percent: float = 5.0
    p99_latency_ms: float = 10_000.0
    endpoint_errors: float = 5.0
    dlq_messages: float = 1.0
    scale_from_zero_failures: float = 1.0
    period_minutes: int = 5
    evaluation_periods: int = 1


@dataclass(frozen=True, slots=True)
class MonitoringProps:
    """Props of :class:`Monitoring`.

    functions
        The Lambdas by name (``{"chat": ..., "api": ...}``): invocations, errors, throttles, p99.
    rest_api
        The REST API; its deployment stage's metrics are graphed and alarmed on.
    ingest_queue / ingest_dlq
        The ingest queue (backlog, age of the oldest message) and its dead-letter queue.
    chat_endpoint_name / chat_inference_component_name
        The chat model's endpoint and, when the model runs as an inference component, the
        component's name (its metrics, copies and scale-from-zero events). Default: no component.
    scale_from_zero_alarm
        The alarm that wakes a scaled-to-zero component (``ChatModel.wake_alarm``): it notifies
        the topic too, instead of a second alarm on the same metric. Default: one is created when
        there is a component.
    embedding_endpoint_name
        The embedding model's endpoint.
    chat_variant_name / embedding_variant_name
        Production variant names. Default ``AllTraffic``.
    metrics_namespace
        Namespace of the application's EMF metrics. Default the library's (``Strata``).
    alarm_email
        Subscribed to the topic when given (the address confirms by mail). Default none.
    thresholds
        :class:`AlarmThresholds`.
    dashboard_name
        Default: CloudFormation names it.
    removal_policy
        Of the topic's KMS key. Default ``DESTROY`` (deletion scheduled, after the waiting period).
    """

    functions: Mapping[str, lambda_.IFunction]
    rest_api: apigw.RestApi
    ingest_queue: sqs.IQueue
    ingest_dlq: sqs.IQueue
    chat_endpoint_name: str
    embedding_endpoint_name: str
    chat_inference_component_name: str | None = None
    scale_from_zero_alarm: cloudwatch.IAlarm | None = None
    chat_variant_name: str = DEFAULT_VARIANT_NAME
    embedding_variant_name: str = DEFAULT_VARIANT_NAME
    metrics_namespace: str = DEFAULT_NAMESPACE
    alarm_email: str | None = None
    thresholds: AlarmThresholds = field(default_factory=AlarmThresholds)
    dashboard_name: str | None = None
    removal_policy: RemovalPolicy = RemovalPolicy.DESTROY


class Monitoring(Construct):
    """The dashboard, the alarms and the SNS topic they notify.

    Attributes
    ----------
    topic
        Alarm notifications: KMS-encrypted, TLS only.
    key
        The topic's customer managed key (rotation on).
    dashboard
        Requests, latency percentiles, time to first token, tokens, errors and 429s, breakers,
        cache hits, model endpoints and copies, ingestion (backlog, lag, failures, DLQ), Lambdas.
    alarms
        By name: ``api_5xx_rate``, ``api_p99_latency``, ``ingest_dlq_not_empty``,
        ``chat_endpoint_errors``, ``embedding_endpoint_errors`` and, with an inference component,
        ``chat_scale_from_zero``.
    """

    def __init__(self, scope: Construct, construct_id: str, props: MonitoringProps) -> None:
        super().__init__(scope, construct_id)
        self._props = props
        self._period = Duration.minutes(props.thresholds.period_minutes)
        self.key, self.topic = self._topic()
        self.alarms = self._alarms()
        action = cloudwatch_actions.SnsAction(self.topic)
        for alarm in self.alarms.values():
            alarm.add_alarm_action(action)
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=props.dashboard_name,
            default_interval=Duration.hours(3),
            widgets=self._widgets(),
        )

    # --- topic ------------------------------------------------------------------------------

    def _topic(self) -> tuple[kms.Key, sns.Topic]:
        stack = Stack.of(self)
        key = kms.Key(
            self,
            "TopicKey",
            description="Strata: encrypts the alarm notification topic",
            enable_key_rotation=True,
            removal_policy=self._props.removal_policy,
        )
        # SNS asks KMS for a data key on the publisher's behalf: CloudWatch must be allowed to.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        topic = sns.Topic(self, "AlarmTopic", display_name="Strata alarms", master_key=key, enforce_ssl=True)
        # A topic policy replaces the default one, which let the account's alarms publish.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="ThisAccountsAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                },
            )
        )
        if self._props.alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(self._props.alarm_email))
        return key, topic

    # --- alarms -----------------------------------------------------------------------------

    def _alarms(self) -> dict[str, cloudwatch.IAlarm]:
        props, limits = self._props, self._props.thresholds
        stage = props.rest_api.deployment_stage
        alarms = {
            "api_5xx_rate": self._alarm(
                "Api5xxRate",
                stage.metric_server_error(statistic="Average", period=self._period),
                limits.server_error_rate_percent / 100,  # 5XXError is 1 or 0 per request
                "Share of API requests answered 5xx",
            ),
            "api_p99_latency": self._alarm(
                "ApiP99Latency",
                stage.metric_latency(statistic="p99", period=self._period),
                limits.p99_latency_ms,
                "API Gateway p99 latency (ms), streams included",
            ),
            "ingest_dlq_not_empty": self._alarm(
                "IngestDlqNotEmpty",
                props.ingest_dlq.metric_approximate_number_of_messages_visible(
                    statistic="Maximum", period=self._period
                ),
                limits.dlq_messages,
                "Documents that could not be ingested wait in the DLQ (each carries its reason)",
            ),
            "chat_endpoint_errors": self._alarm(
                "ChatEndpointErrors",
                self._chat_metric("Invocation5XXErrors", "Sum"),
                limits.endpoint_errors,
                "The chat model answered 5xx",
            ),
            "embedding_endpoint_errors": self._alarm(
                "EmbeddingEndpointErrors",
                self._embedding_metric("Invocation5XXErrors", "Sum"),
                limits.endpoint_errors,
                "The embedding model answered 5xx",
            ),
        }
        if props.scale_from_zero_alarm is not None:  # the alarm that wakes the model: notify on it too
            alarms["chat_scale_from_zero"] = props.scale_from_zero_alarm
        elif props.chat_inference_component_name:
            alarms["chat_scale_from_zero"] = self._alarm(
                "ChatScaleFromZero",
                self._chat_metric("NoCapacityInvocationFailures", "Sum", period=Duration.minutes(1)),
                limits.scale_from_zero_failures,
                "A chat request found no model copy: the model is scaling from zero (minutes)",
                evaluation_periods=1,
            )
        return alarms

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.Metric,
        threshold: float,
        description: str,
        *,
        evaluation_periods: int | None = None,
    ) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods or self._props.thresholds.evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"Strata: {description}",
        )

    # --- metrics ----------------------------------------------------------------------------

    def _chat_metric(self, name: str, statistic: str, *, period: Duration | None = None) -> cloudwatch.Metric:
        props = self._props
        dimensions = (
            {"InferenceComponentName": props.chat_inference_component_name}
            if props.chat_inference_component_name
            else {"EndpointName": props.chat_endpoint_name, "VariantName": props.chat_variant_name}
        )
        return self._sagemaker(name, dimensions, statistic, period)

    def _embedding_metric(self, name: str, statistic: str) -> cloudwatch.Metric:
        dimensions = {
            "EndpointName": self._props.embedding_endpoint_name,
            "VariantName": self._props.embedding_variant_name,
        }
        return self._sagemaker(name, dimensions, statistic, None)

    def _sagemaker(
        self, name: str, dimensions: Mapping[str, str], statistic: str, period: Duration | None
    ) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=SAGEMAKER_NAMESPACE,
            metric_name=name,
            dimensions_map=dict(dimensions),
            statistic=statistic,
            period=period or self._period,
        )

    def _search(
        self,
        metric: StrEnum,
        dimensions: Sequence[Dimension],
        statistic: str,
        *,
        service: str = GATEWAY_SERVICE,
        label: str = _ROUTE_MODEL_LABEL,
    ) -> cloudwatch.SearchExpression:
        """Every series of ``metric`` emitted with exactly ``dimensions`` by ``service``."""
        schema = ",".join([f'"{self._props.metrics_namespace}"', *dimensions])
        terms = f'MetricName="{metric}" {Dimension.SERVICE}="{service}"'
        seconds = int(self._period.to_seconds())
        return cloudwatch.SearchExpression(
            expression=f"SEARCH('{{{schema}}} {terms}', '{statistic}', {seconds})",
            label=f"{label} {statistic}",
            period=self._period,
        )

    def _requests(self, metric: RequestMetric, statistic: str) -> cloudwatch.SearchExpression:
        return self._search(metric, REQUEST_DIMENSIONS, statistic)

    def _ingest(self, metric: IngestMetric, statistic: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=self._props.metrics_namespace,
            metric_name=str(metric),
            dimensions_map={Dimension.SERVICE.value: INGEST_SERVICE},
            statistic=statistic,
            period=self._period,
            label=f"{metric} {statistic}",
        )

    # --- dashboard --------------------------------------------------------------------------

    def _widgets(self) -> list[list[cloudwatch.IWidget]]:
        return [
            [cloudwatch.TextWidget(markdown=self._heading(), width=24, height=2)],
            [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms.values()), width=24, height=3)],
            self._traffic_row(),
            self._latency_row(),
            self._gateway_row(),
            self._models_row(),
            self._ingest_row(),
            self._functions_row(),
        ]

    def _heading(self) -> str:
        return (
            "# Strata\n"
            f"Application metrics: namespace `{self._props.metrics_namespace}`, one line per route and model. "
            "Model latency is in microseconds; gateway timings in milliseconds."
        )

    def _traffic_row(self) -> list[cloudwatch.IWidget]:
        stage = self._props.rest_api.deployment_stage
        return [
            _graph(
                "Requests",
                [self._requests(RequestMetric.REQUESTS, "Sum")],
                right=[stage.metric_count(statistic="Sum", period=self._period, label="API Gateway requests")],
            ),
            _graph(
                "Errors and 429s",
                [
                    self._requests(RequestMetric.ERRORS, "Sum"),
                    self._requests(RequestMetric.RATE_LIMITED, "Sum"),
                ],
                right=[
                    stage.metric_server_error(statistic="Sum", period=self._period, label="API Gateway 5xx"),
                    stage.metric_client_error(statistic="Sum", period=self._period, label="API Gateway 4xx"),
                ],
            ),
            _graph(
                "Tokens",
                [
                    self._requests(RequestMetric.PROMPT_TOKENS, "Sum"),
                    self._requests(RequestMetric.COMPLETION_TOKENS, "Sum"),
                ],
            ),
        ]

    def _latency_row(self) -> list[cloudwatch.IWidget]:
        percentiles = ("p50", "p90", "p99")
        return [
            _graph("Latency (ms)", [self._requests(RequestMetric.LATENCY, p) for p in percentiles]),
            _graph(
                "Time to first token (ms)", [self._requests(RequestMetric.TIME_TO_FIRST_TOKEN, p) for p in percentiles]
            ),
            _graph(
                "Gateway stages p99 (ms)",
                [
                    self._requests(metric, "p99")
                    for metric in (
                        RequestMetric.AUTH_LATENCY,
                        RequestMetric.QUEUE_LATENCY,
                        RequestMetric.ADMIT_LATENCY,
                        RequestMetric.RETRIEVE_LATENCY,
                        RequestMetric.ASSEMBLE_LATENCY,
                    )
                ],
            ),
        ]

    def _gateway_row(self) -> list[cloudwatch.IWidget]:
        stage = self._props.rest_api.deployment_stage
        return [
            _graph(
                "Cache hits",
                [self._requests(RequestMetric.CACHE_HITS, "Sum")],
                right=[self._requests(RequestMetric.VALIDATION_FAILURES, "Sum")],
            ),
            _graph(
                "Circuit breakers open (1) / closed (0)",
                [self._search(BreakerMetric.OPEN, BREAKER_DIMENSIONS, "Maximum", label="${PROP('Dim.target')}")],
            ),
            _graph(
                "API Gateway latency (ms)",
                [
                    stage.metric_latency(statistic=p, period=self._period, label=f"Latency {p}")
                    for p in ("p50", "p90", "p99")
                ],
            ),
        ]

    def _models_row(self) -> list[cloudwatch.IWidget]:
        chat: list[cloudwatch.IMetric] = [
            self._chat_metric("Invocations", "Sum"),
            self._chat_metric("Invocation5XXErrors", "Sum"),
        ]
        widgets = [
            _graph("Chat model invocations", chat, right=[self._chat_metric("ModelLatency", "p99")]),
            _graph(
                "Embedding model invocations",
                [self._embedding_metric("Invocations", "Sum"), self._embedding_metric("Invocation5XXErrors", "Sum")],
                right=[self._embedding_metric("ModelLatency", "p99")],
            ),
        ]
        if self._props.chat_inference_component_name:
            widgets.append(self._copies())
        return widgets

    def _copies(self) -> cloudwatch.GraphWidget:
        """Copies serving the chat model: invocations ÷ invocations per copy, which SageMaker
        publishes per component (no point while idle: zero copies or no traffic)."""
        copies = cloudwatch.MathExpression(
            expression="invocations / per_copy",
            using_metrics={
                "invocations": self._chat_metric("Invocations", "Sum"),
                "per_copy": self._chat_metric("InvocationsPerCopy", "Sum"),
            },
            label="copies serving",
            period=self._period,
        )
        no_capacity = self._chat_metric("NoCapacityInvocationFailures", "Sum")
        return _graph("Chat model copies and scale-from-zero", [copies], right=[no_capacity])

    def _ingest_row(self) -> list[cloudwatch.IWidget]:
        props = self._props
        return [
            _graph(
                "Ingest queue",
                [
                    props.ingest_queue.metric_approximate_number_of_messages_visible(
                        period=self._period, label="backlog"
                    )
                ],
                right=[
                    props.ingest_queue.metric_approximate_age_of_oldest_message(
                        period=self._period, label="oldest message (s)"
                    )
                ],
            ),
            _graph(
                "Ingestion lag (s): upload to searchable",
                [self._ingest(IngestMetric.LAG, statistic) for statistic in ("p50", "p99", "Maximum")],
            ),
            _graph(
                "Ingest failures and DLQ depth",
                [self._ingest(IngestMetric.FAILURES, "Sum")],
                right=[
                    props.ingest_dlq.metric_approximate_number_of_messages_visible(
                        statistic="Maximum", period=self._period, label="DLQ depth"
                    )
                ],
            ),
        ]

    def _functions_row(self) -> list[cloudwatch.IWidget]:
        functions = sorted(self._props.functions.items())
        return [
            _graph(
                "Lambda invocations and errors",
                [fn.metric_invocations(period=self._period, label=f"{name} invocations") for name, fn in functions],
                right=[fn.metric_errors(period=self._period, label=f"{name} errors") for name, fn in functions],
            ),
            _graph(
                "Lambda throttles",
                [fn.metric_throttles(period=self._period, label=f"{name} throttles") for name, fn in functions],
            ),
            _graph(
                "Lambda duration p99 (ms)",
                [fn.metric_duration(statistic="p99", period=self._period, label=name) for name, fn in functions],
            ),
        ]


def _graph(
    title: str, left: Sequence[cloudwatch.IMetric], *, right: Sequence[cloudwatch.IMetric] = ()
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=list(left), right=list(right), width=8, height=6)
