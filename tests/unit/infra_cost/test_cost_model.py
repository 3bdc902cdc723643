"""The cost model on hand-built templates: what bills at idle, what bills per use, what is unpriced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra_cdk.cost import (
    PriceTable,
    PriceTableError,
    Profile,
    ProfileError,
    estimate,
    load_prices,
    load_profile,
    load_profile_file,
    parse_profile,
)
from strata_local.cli import main

PRICES = load_prices()
HOURS = PRICES.hours_per_month
DAYS = PRICES.days_per_month
G5 = PRICES.value("sagemaker.instance_hour.ml.g5.xlarge")


def _profile(**overrides: Any) -> Profile:
    base: dict[str, Any] = {
        "requests_per_day": 1000,
        "prompt_tokens_per_request": 1500,
        "completion_tokens_per_request": 500,
        "documents_per_month": 0,
        "gb_stored": 0,
        "apply_always_free_tier": False,
    }
    return parse_profile({**base, **overrides})


def _template(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": resources}


def _chat_endpoint(*, min_instances: int, max_instances: int, min_copies: int) -> dict[str, Any]:
    """The lead's shape: managed instance scaling + an inference component with a scalable target."""
    return {
        "ChatConfig": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {
                        "VariantName": "AllTraffic",
                        "InstanceType": "ml.g5.xlarge",
                        "InitialInstanceCount": 1,
                        "ManagedInstanceScaling": {
                            "Status": "ENABLED",
                            "MinInstanceCount": min_instances,
                            "MaxInstanceCount": max_instances,
                        },
                    }
                ]
            },
        },
        "ChatEndpoint": {
            "Type": "AWS::SageMaker::Endpoint",
            "Properties": {
                "EndpointName": "strata-test-chat",
                "EndpointConfigName": {"Fn::GetAtt": ["ChatConfig", "EndpointConfigName"]},
            },
        },
        "ChatComponent": {
            "Type": "AWS::SageMaker::InferenceComponent",
            "Properties": {
                "InferenceComponentName": "strata-test-chat-model",
                "EndpointName": {"Fn::GetAtt": ["ChatEndpoint", "EndpointName"]},
                "RuntimeConfig": {"CopyCount": 1},
            },
        },
        "ChatCopies": {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            "Properties": {
                "ServiceNamespace": "sagemaker",
                "ResourceId": "inference-component/strata-test-chat-model",
                "MinCapacity": min_copies,
                "MaxCapacity": max_instances,
            },
        },
    }


CHAT_TRAFFIC = {
    "ChatEndpoint": {
        "calls_per_request": 1,
        "tokens_per_s_per_copy": 2000,
        "busy_hours_per_day": 2,
        "wakes_per_day": 4,
        "scale_in_tail_minutes": 15,
    }
}


def _only(result: Any, logical_id: str) -> Any:
    return next(r for r in result.resources if r.logical_id == logical_id)


def test_a_scale_to_zero_gpu_bills_nothing_idle_and_its_hours_from_traffic() -> None:
    # GIVEN 1000 requests a day of 2000 tokens at 2000 tokens/s: 1000 s of one copy a day
    template = _template(**_chat_endpoint(min_instances=0, max_instances=2, min_copies=0))
    profile = _profile(endpoints=CHAT_TRAFFIC)

    # WHEN
    chat = _only(estimate(template, profile, PRICES), "ChatEndpoint")

    # THEN the floor is zero; use = max(2 busy h, 0.28 h of work) + 4 wakes × 15 min = 3 h a day
    assert chat.idle_monthly_usd == 0
    assert chat.usage_monthly_usd == pytest.approx(3 * DAYS * G5)
    assert "0 min instance" in chat.basis


def test_heavier_traffic_buys_more_gpu_hours_up_to_the_max_instances() -> None:
    template = _template(**_chat_endpoint(min_instances=0, max_instances=2, min_copies=0))
    busy = _profile(endpoints=CHAT_TRAFFIC, requests_per_day=200_000)

    light = _only(estimate(template, _profile(endpoints=CHAT_TRAFFIC), PRICES), "ChatEndpoint")
    heavy = _only(estimate(template, busy, PRICES), "ChatEndpoint")

    # 200,000 × 2000 tokens ÷ 2000 tokens/s needs 28 copies through 2 busy hours: capped at 2
    assert heavy.usage_monthly_usd == pytest.approx((2 * 2 + 1) * DAYS * G5)
    assert heavy.usage_monthly_usd > light.usage_monthly_usd
    assert "CAPPED" in heavy.basis and "CAPPED" not in light.basis


def test_the_autoscaler_concurrency_target_sets_the_copies_above_a_floor() -> None:
    # GIVEN a floor of one instance, and target tracking at 4 concurrent requests per copy
    resources = _chat_endpoint(min_instances=1, max_instances=4, min_copies=1)
    resources["ChatTracking"] = {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "ScalingTargetId": {"Ref": "ChatCopies"},
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": 4,
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
                },
            },
        },
    }
    # 36,000 calls over 10 busy hours = 1 a second, each in flight 10 s: 10 in flight, 2.5 copies
    traffic = {"calls_per_request": 1, "ms_per_call": 10_000, "busy_hours_per_day": 10}
    profile = _profile(requests_per_day=36_000, endpoints={"ChatEndpoint": traffic})

    chat = _only(estimate(_template(**resources), profile, PRICES), "ChatEndpoint")

    assert chat.idle_monthly_usd == pytest.approx(HOURS * G5)
    assert chat.usage_monthly_usd == pytest.approx(1.5 * 10 * DAYS * G5)


def test_a_pinned_instance_bills_730_hours_idle_and_nothing_more_per_use() -> None:
    template = _template(**_chat_endpoint(min_instances=1, max_instances=1, min_copies=1))

    chat = _only(estimate(template, _profile(endpoints=CHAT_TRAFFIC), PRICES), "ChatEndpoint")

    assert chat.idle_monthly_usd == pytest.approx(HOURS * G5)
    assert chat.usage_monthly_usd == 0
    assert "pinned" in chat.basis


def test_a_copy_floor_on_the_inference_component_keeps_an_instance_up() -> None:
    template = _template(**_chat_endpoint(min_instances=0, max_instances=2, min_copies=1))

    chat = _only(estimate(template, _profile(endpoints=CHAT_TRAFFIC), PRICES), "ChatEndpoint")

    assert chat.idle_monthly_usd == pytest.approx(HOURS * G5)


def test_always_on_pins_an_autoscaled_endpoint_at_its_max_around_the_clock() -> None:
    template = _template(**_chat_endpoint(min_instances=0, max_instances=2, min_copies=0))
    profile = _profile(endpoints=CHAT_TRAFFIC)

    scaled = estimate(template, profile, PRICES)
    pinned = estimate(template, profile, PRICES, always_on=True)

    assert _only(scaled, "ChatEndpoint").idle_monthly_usd == 0
    assert _only(pinned, "ChatEndpoint").idle_monthly_usd == pytest.approx(2 * HOURS * G5)
    assert _only(pinned, "ChatEndpoint").usage_monthly_usd == 0
    assert pinned.always_on and pinned.monthly_usd > scaled.monthly_usd


def _serverless_embedding() -> dict[str, Any]:
    return {
        "EmbeddingConfig": {
            "Type": "AWS::SageMaker::EndpointConfig",
            "Properties": {
                "ProductionVariants": [
                    {"VariantName": "AllTraffic", "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}
                ]
            },
        },
        "EmbeddingEndpoint": {
            "Type": "AWS::SageMaker::Endpoint",
            "Properties": {"EndpointConfigName": {"Fn::GetAtt": ["EmbeddingConfig", "EndpointConfigName"]}},
        },
    }


def test_a_serverless_embedding_endpoint_is_per_use_only() -> None:
    profile = _profile(endpoints={"Embedding": {"calls_per_request": 1, "ms_per_call": 100}})

    embedding = _only(estimate(_template(**_serverless_embedding()), profile, PRICES), "EmbeddingEndpoint")

    # 1000 calls a day × 0.1 s × 2 GB
    gb_seconds = 1000 * DAYS * 0.1 * 2
    assert embedding.idle_monthly_usd == 0
    assert embedding.usage_monthly_usd == pytest.approx(gb_seconds * PRICES.value("sagemaker.serverless_gb_second"))


def test_an_opensearch_domain_idles_at_its_instance_hours_plus_its_volumes() -> None:
    template = _template(
        Search={
            "Type": "AWS::OpenSearchService::Domain",
            "Properties": {
                "ClusterConfig": {"InstanceType": "t3.small.search", "InstanceCount": 2},
                "EBSOptions": {"EBSEnabled": True, "VolumeSize": 10, "VolumeType": "gp3"},
            },
        }
    )

    search = _only(estimate(template, _profile(), PRICES), "Search")

    node_hour = PRICES.value("opensearch.instance_hour.t3.small.search")
    gp3 = PRICES.value("opensearch.gp3_gb_month")
    assert search.idle_monthly_usd == pytest.approx(2 * HOURS * node_hour + 2 * 10 * gp3)
    assert search.usage_monthly_usd == 0


def test_a_serverless_collection_idles_at_its_ocu_minimum() -> None:
    template = _template(
        Dev={"Type": "AWS::OpenSearchServerless::Collection", "Properties": {"StandbyReplicas": "DISABLED"}},
        Prod={"Type": "AWS::OpenSearchServerless::Collection", "Properties": {}},
    )

    result = estimate(template, _profile(), PRICES)

    ocu = PRICES.value("opensearch.serverless_ocu_hour")
    assert _only(result, "Dev").idle_monthly_usd == pytest.approx(1 * HOURS * ocu)
    assert _only(result, "Prod").idle_monthly_usd == pytest.approx(2 * HOURS * ocu)


def test_a_lambda_function_bills_requests_and_gb_seconds_by_its_architecture() -> None:
    template = _template(
        FunctionsChat={"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 1024, "Architectures": ["arm64"]}},
        FunctionsOld={"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 1024}},
    )
    use = {"per": "request", "calls": 1, "duration_ms": 2000}
    profile = _profile(functions={"FunctionsChat": use, "FunctionsOld": use})

    result = estimate(template, profile, PRICES)

    calls = 1000 * DAYS
    arm = calls * (PRICES.value("lambda.request") + 2 * PRICES.value("lambda.gb_second.arm64"))
    assert _only(result, "FunctionsChat").usage_monthly_usd == pytest.approx(arm)
    assert _only(result, "FunctionsOld").usage_monthly_usd > arm  # x86_64, the default, costs more per GB-s


def test_a_resource_type_without_a_price_is_listed_as_unpriced_not_dropped() -> None:
    template = _template(
        Cluster={"Type": "AWS::RDS::DBCluster", "Properties": {}},
        Big={
            "Type": "AWS::OpenSearchService::Domain",
            "Properties": {"ClusterConfig": {"InstanceType": "r8x.huge.search"}},
        },
        Role={"Type": "AWS::IAM::Role", "Properties": {}},
    )

    result = estimate(template, _profile(), PRICES)

    unpriced = {u.logical_id: u.reason for u in result.unpriced}
    assert unpriced["Cluster"] == "no price model for this resource type"
    assert "opensearch.instance_hour.r8x.huge.search" in unpriced["Big"]
    assert result.no_charge == {"AWS::IAM::Role": 1}
    assert result.resources == []
    assert result.to_json()["complete"] is False


def test_the_always_free_alarms_are_shared_in_template_order() -> None:
    alarms = {f"Alarm{i:02}": {"Type": "AWS::CloudWatch::Alarm", "Properties": {"Period": 60}} for i in range(12)}

    free = estimate(_template(**alarms), _profile(apply_always_free_tier=True), PRICES)
    paid = estimate(_template(**alarms), _profile(apply_always_free_tier=False), PRICES)

    alarm = PRICES.value("cloudwatch.alarm_month")
    assert free.idle_monthly_usd == pytest.approx(2 * alarm)
    assert paid.idle_monthly_usd == pytest.approx(12 * alarm)


def test_target_tracking_on_a_high_resolution_metric_pays_for_two_high_resolution_alarms() -> None:
    metric = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"
    template = _template(
        Tracking={
            "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
            "Properties": {
                "TargetTrackingScalingPolicyConfiguration": {
                    "PredefinedMetricSpecification": {"PredefinedMetricType": metric}
                }
            },
        }
    )

    tracking = _only(estimate(template, _profile(apply_always_free_tier=True), PRICES), "Tracking")

    assert tracking.idle_monthly_usd == pytest.approx(2 * PRICES.value("cloudwatch.high_resolution_alarm_month"))


def test_a_web_acl_idles_at_the_acl_and_its_rules_and_bills_per_request() -> None:
    rules = [{"Name": name} for name in ("Common", "KnownBadInputs", "IpReputation", "RateLimit")]
    template = _template(WebAcl={"Type": "AWS::WAFv2::WebACL", "Properties": {"Scope": "REGIONAL", "Rules": rules}})

    acl = _only(estimate(template, _profile(), PRICES), "WebAcl")

    assert acl.idle_monthly_usd == pytest.approx(PRICES.value("waf.web_acl_month") + 4 * PRICES.value("waf.rule_month"))
    assert acl.usage_monthly_usd == pytest.approx(1000 * DAYS * PRICES.value("waf.request"))


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"requests_per_day": -5}, "requests_per_day"),
        ({"requests_per_day": "lots"}, "requests_per_day"),
        ({"endpoints": {"Chat": {"busy_hours_per_day": 30}}}, "endpoints.Chat.busy_hours_per_day"),
        ({"request_per_day": 10}, "request_per_day"),  # a typo is not silently ignored
    ],
)
def test_a_bad_profile_value_is_a_clear_error_naming_the_field(override: dict[str, Any], field: str) -> None:
    with pytest.raises(ProfileError, match=field.replace(".", r"\.")):
        _profile(**override)


def test_an_unknown_stage_names_the_profiles_there_are() -> None:
    with pytest.raises(ProfileError, match="have: dev, prod"):
        load_profile("staging")


def test_a_profile_file_holds_one_profile(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"requests_per_day": 10}))

    with pytest.raises(ProfileError, match="prompt_tokens_per_request"):
        load_profile_file(path)


def test_every_price_says_when_where_and_from_what_source() -> None:
    for key, entry in PRICES.prices.items():
        assert entry["region"] == "us-east-1", key
        assert entry["source"].startswith("https://aws.amazon.com/"), key
        assert entry["date"] and entry["confirmed"], key


def test_a_price_without_its_provenance_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"prices": {"kms.key_month": {"value": 1.0, "unit": "USD per key-month"}}}))

    with pytest.raises(PriceTableError, match="kms.key_month lacks date, region, source, confirmed"):
        load_prices(path)


def test_the_shipped_profiles_are_valid() -> None:
    assert load_profile("dev").requests_per_day < load_profile("prod").requests_per_day == 100_000


def test_an_estimate_in_json_has_the_contract_keys() -> None:
    template = _template(
        Secret={"Type": "AWS::SecretsManager::Secret", "Properties": {}},
        Key={"Type": "AWS::KMS::Key", "Properties": {}},
    )

    out = estimate(template, _profile(), PriceTable(PRICES.prices, PRICES.no_charge)).to_json()

    assert {"idle_monthly_usd", "monthly_usd", "resources"} <= out.keys()
    assert out["idle_monthly_usd"] == pytest.approx(
        PRICES.value("secretsmanager.secret_month") + PRICES.value("kms.key_month")
    )
    assert {r["logical_id"] for r in out["resources"]} == {"Secret", "Key"}
    assert all({"type", "idle_monthly_usd", "usage_monthly_usd", "basis"} <= r.keys() for r in out["resources"])


def test_the_command_prices_a_template_file_without_synthesizing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tmp_path / "strata-dev.template.json"
    template.write_text(json.dumps(_template(Secret={"Type": "AWS::SecretsManager::Secret", "Properties": {}})))

    assert main(["cost", "--stage", "dev", "--template", str(template), "--json"]) == 0

    out = json.loads(capsys.readouterr().out)
    assert out["stage"] == "dev"
    assert out["idle_monthly_usd"] == pytest.approx(PRICES.value("secretsmanager.secret_month"), abs=0.005)


def test_the_command_refuses_a_bad_profile_file_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = tmp_path / "traffic.json"
    profile.write_text(json.dumps({**load_profile("dev").model_dump(), "requests_per_day": -1}))

    assert main(["cost", "--profile", str(profile), "--template", str(profile)]) == 2
    assert "requests_per_day" in capsys.readouterr().err
