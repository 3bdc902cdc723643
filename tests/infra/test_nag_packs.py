"""The optional cdk-nag packs (``strata.nag_packs``): every finding is fixed or acknowledged.

Two variants of cdk.json's app with both packs on, each synthesized once: the default stage, and a
stage in a VPC without WAF (the acknowledgements that depend on configuration), to which an
unreviewed bucket is added to show that no acknowledgement reaches a resource it was not written for.
"""

from __future__ import annotations

import copy
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Annotations, Match, Template

from infra_cdk.app import SKIP_BUNDLING, build_app, read_cdk_json_context
from infra_cdk.config import CONTEXT_KEY
from infra_cdk.nag_packs import KNOWN_PACKS, UnknownNagPackError, suppress_pack_findings
from infra_cdk.stack import StrataStack

PACK_FINDING = Match.string_like_regexp("(HIPAA|NIST).*")
PROBE_ID = "UnreviewedProbeBucket"


@dataclass(frozen=True)
class Finding:
    rule: str
    resource: str


def _build(strata: dict[str, Any], outdir: Path) -> tuple[Any, StrataStack]:
    context = read_cdk_json_context()
    context[CONTEXT_KEY] = {**strata, "nag_packs": list(KNOWN_PACKS)}
    return build_app(context=context, post_cli_context=SKIP_BUNDLING, outdir=str(outdir))


def _non_compliant(outdir: Path, pack: str) -> list[Finding]:
    (report,) = outdir.glob(f"{pack}--*-NagReport.csv")
    with report.open(newline="") as rows:
        return [
            Finding(row["Rule ID"], row["Resource ID"])
            for row in csv.DictReader(rows)
            if row["Compliance"] not in ("Compliant", "Suppressed")
        ]


@pytest.fixture(scope="module")
def default_stage(tmp_path_factory: pytest.TempPathFactory) -> StrataStack:
    strata = copy.deepcopy(read_cdk_json_context()[CONTEXT_KEY])
    _, stack = _build(strata, tmp_path_factory.mktemp("cdk.out"))
    try:
        Template.from_stack(stack)
    except RuntimeError as exc:  # unacknowledged errors fail synthesis (cdk.json feature flags)
        pytest.fail(f"synthesis failed; the findings are printed above: {exc}")
    return stack


@pytest.fixture(scope="module")
def vpc_stage_with_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cloud assembly folder of a VPC stage without WAF, plus an unreviewed bucket."""
    strata = copy.deepcopy(read_cdk_json_context()[CONTEXT_KEY])
    strata.update(stage="ha", retain_data=False)
    strata["environments"]["ha"] = {
        "search": {"data_nodes": 2},
        "embedding_model": {"instance_type": "ml.c6i.large"},
        "vpc": {"enabled": True, "max_azs": 2, "nat_gateways": 1},
        "waf": {"enabled": False},
    }
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = _build(strata, outdir)
    s3.Bucket(stack, PROBE_ID)
    # The probe's findings fail the synthesis on purpose; the reports are written before that.
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    return outdir


def test_the_default_stage_has_no_unacknowledged_pack_errors(default_stage: StrataStack) -> None:
    errors = Annotations.from_stack(default_stage).find_error("*", PACK_FINDING)
    assert [(e.id, e.entry.data) for e in errors] == []


def test_the_default_stage_has_no_unacknowledged_pack_warnings(default_stage: StrataStack) -> None:
    warnings = Annotations.from_stack(default_stage).find_warning("*", PACK_FINDING)
    assert [(w.id, w.entry.data) for w in warnings] == []


@pytest.mark.parametrize("pack", KNOWN_PACKS)
def test_in_a_vpc_without_waf_only_the_unreviewed_bucket_has_findings(vpc_stage_with_probe: Path, pack: str) -> None:
    findings = _non_compliant(vpc_stage_with_probe, pack)
    assert [f for f in findings if f"/{PROBE_ID}/" not in f.resource] == []
    probe_rules = {f.rule.removeprefix(f"{pack}-") for f in findings}
    assert {"S3DefaultEncryptionKMS", "S3BucketVersioningEnabled", "S3BucketReplicationEnabled"} <= probe_rules


def test_each_acknowledgement_carries_its_reason(vpc_stage_with_probe: Path) -> None:
    for pack in KNOWN_PACKS:
        (report,) = vpc_stage_with_probe.glob(f"{pack}--*-NagReport.csv")
        with report.open(newline="") as rows:
            suppressed = [row for row in csv.DictReader(rows) if row["Compliance"] == "Suppressed"]
        assert suppressed, pack
        assert all(len(row["Exception Reason"]) > 40 for row in suppressed), pack


def test_an_unknown_pack_is_refused(default_stage: StrataStack) -> None:
    with pytest.raises(UnknownNagPackError, match="PCI.DSS.321"):
        suppress_pack_findings(default_stage, ["PCI.DSS.321"])
