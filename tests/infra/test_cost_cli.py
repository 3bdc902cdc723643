"""``strata cost`` on the real templates: the contract keys, and the dev idle budget from issue 9."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest

from strata_local.cli import main

DEV_IDLE_BUDGET_USD = 40  # issue 9: the default dev deployment idles for at most $40 a month


def _cost(stage: str) -> dict[str, Any]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["cost", "--stage", stage, "--json"])
    assert status == 0
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def dev() -> dict[str, Any]:
    return _cost("dev")


@pytest.fixture(scope="module")
def prod() -> dict[str, Any]:
    return _cost("prod")


def test_the_json_carries_the_contract_keys(dev: dict[str, Any]) -> None:
    assert {"idle_monthly_usd", "monthly_usd", "resources"} <= dev.keys()
    assert dev["resources"], "no resource was priced"
    for resource in dev["resources"]:
        assert {"logical_id", "type", "idle_monthly_usd", "usage_monthly_usd", "basis"} <= resource.keys()
    assert dev["monthly_usd"] >= dev["idle_monthly_usd"]


def test_every_dev_resource_is_priced_or_known_to_cost_nothing(dev: dict[str, Any]) -> None:
    assert dev["unpriced"] == []


def test_the_default_dev_deployment_idles_within_the_budget(dev: dict[str, Any]) -> None:
    gpu = [r for r in dev["resources"] if r["type"] == "AWS::SageMaker::Endpoint" and "ml.g" in r["basis"]]

    assert dev["idle_monthly_usd"] <= DEV_IDLE_BUDGET_USD, dev["resources"][:5]
    assert gpu and all(r["idle_monthly_usd"] == 0 for r in gpu), "a GPU bills while dev is idle"


def test_prod_idles_above_dev(dev: dict[str, Any], prod: dict[str, Any]) -> None:
    assert prod["idle_monthly_usd"] > dev["idle_monthly_usd"]
    assert prod["monthly_usd"] > prod["idle_monthly_usd"]
