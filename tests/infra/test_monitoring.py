"""The dashboard, alarms and topic (:class:`Monitoring`) in a small standalone app, synthesized once.

``Monitored`` has the chat model as an inference component and an alarm address; ``Plain`` has a
plain chat endpoint and no address. Both hold dummy Lambdas, a REST API with one method and two
queues, and the app runs cdk-nag's AwsSolutions checks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, Aspects, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Annotations, Match, Template
from cdk_nag import AwsSolutionsChecks

from infra_cdk.constructs.monitoring import AlarmThresholds, Monitoring, MonitoringProps
from strata.observability.metrics import (
    DEFAULT_NAMESPACE,
    GATEWAY_SERVICE,
    INGEST_SERVICE,
    BreakerMetric,
    IngestMetric,
    RequestMetric,
)

CHAT_ENDPOINT = "strata-chat"
CHAT_COMPONENT = "strata-chat-model"
EMBEDDING_ENDPOINT = "strata-embedding"
EMAIL = "oncall@example.com"
THRESHOLDS = AlarmThresholds(server_error_rate_percent=2, p99_latency_ms=12_000, endpoint_errors=3)


@dataclass(frozen=True)
class Monitored:
    stack: Stack
    monitoring: Monitoring
    template: Template
    annotations: Annotations

    def logical_id(self, construct: Any) -> str:
        return self.stack.get_logical_id(construct.node.default_child)

    def stage_ref(self) -> dict[str, str]:
        """What the API Gateway metrics' ``Stage`` dimension holds: a reference to the stage."""
        api = self.stack.node.find_child("Api")
        assert isinstance(api, apigw.RestApi)
        return {"Ref": self.logical_id(api.deployment_stage)}

    def dashboard(self) -> dict[str, Any]:
        """The dashboard body as JSON, each CloudFormation token kept as its JSON text."""
        (dashboard,) = self.template.find_resources("AWS::CloudWatch::Dashboard").values()
        body = dashboard["Properties"]["DashboardBody"]
        parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
        return json.loads("".join(p if isinstance(p, str) else json.dumps(json.dumps(p))[1:-1] for p in parts))


@dataclass(frozen=True)
class MonitoringApp:
    monitored: Monitored
    plain: Monitored


def _monitored(app: App, stack_id: str, *, component: str | None, email: str | None) -> tuple[Stack, Monitoring]:
    stack = Stack(app, stack_id)
    functions = {
        name: lambda_.Function(
            stack,
            f"{name.title()}Function",
            runtime=lambda_.Runtime.PYTHON_3_12,
            handler="index.handler",
            code=lambda_.Code.from_inline("def handler(event, context):\n    return {}\n"),
        )
        for name in ("chat", "api", "ingest")
    }
    api = apigw.RestApi(stack, "Api", deploy_options=apigw.StageOptions(stage_name="dev"))
    api.root.add_method("GET", apigw.MockIntegration())
    dlq = sqs.Queue(stack, "Dlq")
    queue = sqs.Queue(stack, "Queue", dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=3, queue=dlq))
    monitoring = Monitoring(
        stack,
        "Monitoring",
        MonitoringProps(
            functions=functions,
            rest_api=api,
            ingest_queue=queue,
            ingest_dlq=dlq,
            chat_endpoint_name=CHAT_ENDPOINT,
            chat_inference_component_name=component,
            embedding_endpoint_name=EMBEDDING_ENDPOINT,
            alarm_email=email,
            thresholds=THRESHOLDS,
        ),
    )
    return stack, monitoring


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> MonitoringApp:
    app = App(outdir=str(tmp_path_factory.mktemp("cdk.out")))
    stacks = (
        _monitored(app, "Monitored", component=CHAT_COMPONENT, email=EMAIL),
        _monitored(app, "Plain", component=None, email=None),
    )
    Aspects.of(app).add(AwsSolutionsChecks())
    return MonitoringApp(
        *(Monitored(stack, built, Template.from_stack(stack), Annotations.from_stack(stack)) for stack, built in stacks)
    )


@pytest.fixture(scope="module")
def monitored(built: MonitoringApp) -> Monitored:
    return built.monitored


def _metric_arrays(body: dict[str, Any]) -> list[list[Any]]:
    return [metric for widget in body["widgets"] for metric in widget["properties"].get("metrics", [])]


def _searches(body: dict[str, Any]) -> list[str]:
    return [
        options["expression"]
        for metric in _metric_arrays(body)
        for options in metric
        if isinstance(options, dict) and options.get("expression", "").startswith("SEARCH(")
    ]


def _plain_metrics(body: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...]]]:
    """(namespace, name, dimensions name=value) of every metric drawn directly."""
    found = set()
    for metric in _metric_arrays(body):
        fields = [item for item in metric if isinstance(item, str)]
        if len(fields) >= 2:
            pairs = fields[2:]
            found.add((fields[0], fields[1], tuple(f"{k}={v}" for k, v in zip(pairs[::2], pairs[1::2], strict=True))))
    return found


_SEARCH = re.compile(
    r"""^SEARCH\('\{"(?P<ns>[^"]+)",(?P<dims>[^}]+)\} MetricName="(?P<name>[^"]+)" service="(?P<svc>[^"]+)"'"""
)


def test_the_dashboard_searches_the_gateway_metrics_by_their_emitted_dimensions(monitored: Monitored) -> None:
    searched: dict[str, set[tuple[str, str, str]]] = {}
    for expression in _searches(monitored.dashboard()):
        match = _SEARCH.match(expression)
        assert match, expression
        searched.setdefault(match["name"], set()).add((match["ns"], match["dims"], match["svc"]))

    required = {
        RequestMetric.REQUESTS,
        RequestMetric.LATENCY,
        RequestMetric.TIME_TO_FIRST_TOKEN,
        RequestMetric.PROMPT_TOKENS,
        RequestMetric.COMPLETION_TOKENS,
        RequestMetric.ERRORS,
        RequestMetric.RATE_LIMITED,
        RequestMetric.CACHE_HITS,
    }
    assert required <= set(searched)
    for name in set(searched) - {BreakerMetric.OPEN}:
        assert name in set(RequestMetric), name
        assert searched[name] == {(DEFAULT_NAMESPACE, "service,route,model", GATEWAY_SERVICE)}, name
    assert searched[BreakerMetric.OPEN] == {(DEFAULT_NAMESPACE, "service,target", GATEWAY_SERVICE)}


def test_the_dashboard_graphs_latency_percentiles_and_ingest_metrics(monitored: Monitored) -> None:
    body = monitored.dashboard()
    latency = [e for e in _searches(body) if f'MetricName="{RequestMetric.LATENCY}"' in e]
    assert sorted(e.split("', '")[1].split("'")[0] for e in latency) == ["p50", "p90", "p99"]

    plain = _plain_metrics(body)
    ingest = (f"service={INGEST_SERVICE}",)
    assert (DEFAULT_NAMESPACE, IngestMetric.LAG, ingest) in plain
    assert (DEFAULT_NAMESPACE, IngestMetric.FAILURES, ingest) in plain


def test_the_dashboard_graphs_the_aws_service_metrics(monitored: Monitored) -> None:
    plain = _plain_metrics(monitored.dashboard())
    stage = ("ApiName=Api", f"Stage={json.dumps(monitored.stage_ref())}")
    component = (f"InferenceComponentName={CHAT_COMPONENT}",)
    embedding = (f"EndpointName={EMBEDDING_ENDPOINT}", "VariantName=AllTraffic")
    expected = {
        ("AWS/ApiGateway", "Count", stage),
        ("AWS/ApiGateway", "5XXError", stage),
        ("AWS/ApiGateway", "Latency", stage),
        *(
            ("AWS/SageMaker", name, component)
            for name in ("Invocations", "ModelLatency", "Invocation5XXErrors", "NoCapacityInvocationFailures")
        ),
        ("AWS/SageMaker", "InvocationsPerCopy", component),  # copies = Invocations / InvocationsPerCopy
        ("AWS/SageMaker", "Invocations", embedding),
        ("AWS/SageMaker", "Invocation5XXErrors", embedding),
    }
    assert expected <= plain
    queues = {(ns, name) for ns, name, _ in plain if ns == "AWS/SQS"}
    assert queues == {("AWS/SQS", "ApproximateNumberOfMessagesVisible"), ("AWS/SQS", "ApproximateAgeOfOldestMessage")}
    functions = {dims for ns, name, dims in plain if ns == "AWS/Lambda" and name == "Errors"}
    assert len(functions) == 3


def _alarm(monitored: Monitored, name: str) -> dict[str, Any]:
    alarm_id = monitored.logical_id(monitored.monitoring.alarms[name])
    return monitored.template.to_json()["Resources"][alarm_id]["Properties"]


@pytest.mark.parametrize(
    ("name", "namespace", "metric", "statistic", "threshold", "dimensions"),
    [
        ("api_5xx_rate", "AWS/ApiGateway", "5XXError", "Average", 0.02, {"ApiName": "Api", "Stage": "<stage>"}),
        ("api_p99_latency", "AWS/ApiGateway", "Latency", "p99", 12_000, {"ApiName": "Api", "Stage": "<stage>"}),
        (
            "chat_endpoint_errors",
            "AWS/SageMaker",
            "Invocation5XXErrors",
            "Sum",
            3,
            {"InferenceComponentName": CHAT_COMPONENT},
        ),
        (
            "embedding_endpoint_errors",
            "AWS/SageMaker",
            "Invocation5XXErrors",
            "Sum",
            3,
            {"EndpointName": EMBEDDING_ENDPOINT, "VariantName": "AllTraffic"},
        ),
        (
            "chat_scale_from_zero",
            "AWS/SageMaker",
            "NoCapacityInvocationFailures",
            "Sum",
            1,
            {"InferenceComponentName": CHAT_COMPONENT},
        ),
    ],
)
def test_each_alarm_watches_its_metric_and_notifies_the_topic(
    monitored: Monitored,
    name: str,
    namespace: str,
    metric: str,
    statistic: str,
    threshold: float,
    dimensions: dict[str, Any],
) -> None:
    alarm = _alarm(monitored, name)
    dimensions = {k: monitored.stage_ref() if v == "<stage>" else v for k, v in dimensions.items()}
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Threshold"]) == (namespace, metric, threshold)
    assert alarm.get("Statistic", alarm.get("ExtendedStatistic")) == statistic
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == dimensions
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["TreatMissingData"] == "notBreaching"  # an idle deployment publishes nothing
    assert alarm["AlarmActions"] == [{"Ref": monitored.logical_id(monitored.monitoring.topic)}]


def test_the_dlq_alarm_fires_on_one_visible_message(monitored: Monitored) -> None:
    alarm = _alarm(monitored, "ingest_dlq_not_empty")
    dlq_id = monitored.stack.get_logical_id(monitored.stack.node.find_child("Dlq").node.default_child)
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
    )
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert alarm["Threshold"] == 1
    assert alarm["AlarmActions"] == [{"Ref": monitored.logical_id(monitored.monitoring.topic)}]


def test_the_dashboard_shows_every_alarm(monitored: Monitored) -> None:
    body = json.dumps(monitored.dashboard())
    for alarm in monitored.monitoring.alarms.values():
        assert monitored.logical_id(alarm) in body


def test_the_topic_is_kms_encrypted_tls_only_and_open_to_this_accounts_alarms(monitored: Monitored) -> None:
    template, key_id = monitored.template, monitored.logical_id(monitored.monitoring.key)
    topic_id = monitored.logical_id(monitored.monitoring.topic)
    template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]}})
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                            }
                        )
                    ]
                )
            },
        },
    )
    (policy,) = template.find_resources("AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    deny_plaintext = [s for s in statements if s["Effect"] == "Deny"]
    assert deny_plaintext and all(
        s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} and s["Principal"] == "*" for s in deny_plaintext
    )
    (publish,) = [s for s in statements if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and publish["Action"] == "sns:Publish"
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_the_alarm_address_is_subscribed_when_given(built: MonitoringApp) -> None:
    built.monitored.template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": EMAIL})
    built.plain.template.resource_count_is("AWS::SNS::Subscription", 0)


def test_a_plain_chat_endpoint_is_watched_per_variant_with_no_scale_from_zero_alarm(built: MonitoringApp) -> None:
    plain = built.plain
    assert set(plain.monitoring.alarms) == {
        "api_5xx_rate",
        "api_p99_latency",
        "ingest_dlq_not_empty",
        "chat_endpoint_errors",
        "embedding_endpoint_errors",
    }
    alarm = _alarm(plain, "chat_endpoint_errors")
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {
        "EndpointName": CHAT_ENDPOINT,
        "VariantName": "AllTraffic",
    }
    assert not any(name == "NoCapacityInvocationFailures" for _, name, _ in _plain_metrics(plain.dashboard()))


@pytest.mark.parametrize("which", ["monitored", "plain"])
def test_cdk_nag_finds_nothing_in_the_construct(built: MonitoringApp, which: str) -> None:
    hosted: Monitored = getattr(built, which)
    prefix = f"/{hosted.stack.node.path}/Monitoring/"
    findings = [
        (message.id, str(message.entry.data))
        for found in (
            hosted.annotations.find_error("*", Match.string_like_regexp("AwsSolutions-")),
            hosted.annotations.find_warning("*", Match.string_like_regexp("AwsSolutions-")),
        )
        for message in found
        if message.id.startswith(prefix)
    ]
    assert findings == []
    # The checks did run: the dummy functions outside the construct draw their usual findings.
    assert hosted.annotations.find_error("*", Match.string_like_regexp("AwsSolutions-IAM4"))
