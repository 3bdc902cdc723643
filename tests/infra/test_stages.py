"""The dev and prod templates differ only where ``strata.environments`` says they do.

Both stages are synthesized from ``cdk.json``; resources are matched by construct path and every
name that carries the stage is normalized, so what is left are the real differences. Each one
must be explained by a key that the two stages' overrides set to different values.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra_cdk.app import SKIP_BUNDLING, build_app, read_cdk_json_context
from infra_cdk.config import CONTEXT_KEY

ANY = "*"
# config key (a key of an environment's overrides) → the (resource type, template key) it may change;
# ("<type>", None) lets it add or remove resources of that type.
EFFECTS: dict[str, set[tuple[str, str | None]]] = {
    "retain_data": {
        (ANY, "DeletionPolicy"),
        (ANY, "UpdateReplacePolicy"),
        ("AWS::DynamoDB::Table", "DeletionProtectionEnabled"),
        ("AWS::S3::Bucket", "Tags"),  # CDK tags a bucket it may empty on delete
        # CDK's auto-delete-objects custom resource exists only where buckets are deleted.
        ("Custom::S3AutoDeleteObjects", None),
        ("AWS::IAM::Role", None),
        ("AWS::Lambda::Function", None),
        ("AWS::S3::BucketPolicy", "PolicyDocument"),
    },
    "log_retention_days": {("AWS::Logs::LogGroup", "RetentionInDays")},
    "interactions_retention_days": {("AWS::S3::Bucket", "LifecycleConfiguration")},
    "api": {("AWS::ApiGateway::Stage", "MethodSettings")},
    "search": {
        ("AWS::OpenSearchService::Domain", "ClusterConfig"),
        ("AWS::OpenSearchService::Domain", "EBSOptions"),
        ("AWS::OpenSearchService::Domain", "Metadata"),  # the single-node cdk-nag acknowledgement
    },
    "chat_model": {
        ("AWS::SageMaker::EndpointConfig", "ProductionVariants"),
        ("AWS::SageMaker::InferenceComponent", "RuntimeConfig"),
        ("AWS::ApplicationAutoScaling::ScalableTarget", "MinCapacity"),
        ("AWS::ApplicationAutoScaling::ScalableTarget", "MaxCapacity"),
        # Scale to zero: the wake alarm and its step policy (which also notify), or, without it,
        # the monitoring's own alarm on the same metric.
        ("AWS::ApplicationAutoScaling::ScalingPolicy", None),
        ("AWS::CloudWatch::Alarm", None),
        ("AWS::CloudWatch::Dashboard", "DashboardBody"),
    },
    "embedding_model": {
        ("AWS::SageMaker::EndpointConfig", "ProductionVariants"),
        ("AWS::CloudWatch::Dashboard", "DashboardBody"),
    },
}


def _synth(stage: str, outdir: Path) -> dict[str, Any]:
    app, stack = build_app(
        context=read_cdk_json_context(),
        post_cli_context={**SKIP_BUNDLING, "aws:cdk:enable-path-metadata": True},  # as the CLI synthesizes
        outdir=str(outdir),
        stage=stage,
    )
    return _normalized(app.synth().get_stack_by_name(stack.stack_name).template, stage)


def _normalized(template: dict[str, Any], stage: str) -> dict[str, dict[str, Any]]:
    """Resources by construct path, with logical ids and stage names replaced by stage-free names."""
    paths = {
        logical_id: resource.get("Metadata", {}).get("aws:cdk:path", logical_id)
        for logical_id, resource in template["Resources"].items()
    }
    text = json.dumps(template["Resources"])
    # Asset keys are content hashes of the code, which is the same for every stage.
    text = re.sub(r'"S3Key": "[0-9a-f]{64}\.zip"', '"S3Key": "<asset>"', text)
    for logical_id in sorted(paths, key=len, reverse=True):
        text = text.replace(f'"{logical_id}"', json.dumps(_stage_free(paths[logical_id], stage)))
    return json.loads(_stage_free(text, stage))  # keyed by path now: the keys were logical ids too


def _stage_free(text: str, stage: str) -> str:
    # Names CDK generates from the stack's name end in a hash (and are cut to a length limit):
    # strataprodApiRestApi1CC4DC3D.
    text = re.sub(rf"strata{stage}[A-Za-z0-9.]*?[0-9A-F]{{8}}\b", "strata<stage><generated>", text)
    text = text.replace(f"strata-{stage}", "strata-<stage>")
    text = re.sub(rf"(?<=[/.]){stage}(?=[/\"A-Z])", "<stage>", text)  # DeploymentStage.dev/...
    return re.sub(rf'(?<=")({stage})(?=")', "<stage>", text)  # "StageName": "dev", tag values


@pytest.fixture(scope="module")
def stages(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    return _synth("dev", tmp_path_factory.mktemp("dev")), _synth("prod", tmp_path_factory.mktemp("prod"))


def _differences(dev: dict[str, Any], prod: dict[str, Any]) -> set[tuple[str, str, str | None]]:
    """(construct path, resource type, template key or None for a resource in one stage only)."""
    found: set[tuple[str, str, str | None]] = set()
    for path in dev.keys() | prod.keys():
        if path not in dev or path not in prod:
            found.add((path, (dev.get(path) or prod[path])["Type"], None))
            continue
        a, b = dev[path], prod[path]
        for key in (a.keys() | b.keys()) - {"Properties", "Metadata"}:
            if a.get(key) != b.get(key):
                found.add((path, a["Type"], key))
        for key in a.get("Properties", {}).keys() | b.get("Properties", {}).keys():
            if a.get("Properties", {}).get(key) != b.get("Properties", {}).get(key):
                found.add((path, a["Type"], key))
        if _nag(a) != _nag(b):
            found.add((path, a["Type"], "Metadata"))
    return found


def _nag(resource: dict[str, Any]) -> Any:
    return resource.get("Metadata", {}).get("cdk_nag")


def _overridden_keys() -> set[str]:
    environments = read_cdk_json_context()[CONTEXT_KEY]["environments"]
    dev, prod = environments["dev"], environments["prod"]
    return {key for key in dev.keys() | prod.keys() if dev.get(key) != prod.get(key)}


def test_every_difference_between_dev_and_prod_is_one_the_config_makes(
    stages: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    keys = _overridden_keys()
    assert keys <= EFFECTS.keys(), f"say what {sorted(keys - EFFECTS.keys())} may change in EFFECTS"
    allowed = set().union(*(EFFECTS[key] for key in keys))
    unexplained = sorted(
        (path, kind, key)
        for path, kind, key in _differences(*stages)
        if (kind, key) not in allowed and (ANY, key) not in allowed
    )
    assert unexplained == []


def test_the_stages_really_differ_where_the_config_says(stages: tuple[dict[str, Any], dict[str, Any]]) -> None:
    differences = {(kind, key) for _, kind, key in _differences(*stages)}
    assert ("AWS::OpenSearchService::Domain", "ClusterConfig") in differences
    assert ("AWS::SageMaker::EndpointConfig", "ProductionVariants") in differences
    assert ("AWS::ApplicationAutoScaling::ScalableTarget", "MinCapacity") in differences
    assert ("AWS::Logs::LogGroup", "RetentionInDays") in differences
