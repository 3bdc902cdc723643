"""CDK app tests: every test here is marked ``infra``; the app is synthesized once per session.

Synthesis runs offline (no account, CLI or Docker) with asset bundling skipped, so pip never runs.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

# jsii starts a Node.js process; this machine's Node 20 works but jsii prints a banner about it.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

if shutil.which("node") is None:
    pytest.skip("the CDK (jsii) needs Node.js on PATH", allow_module_level=True)
pytest.importorskip("aws_cdk", reason="install the 'infra' extra")
pytest.importorskip("cdk_nag", reason="install the 'infra' extra")

from aws_cdk.assertions import Annotations, Template  # noqa: E402

from infra_cdk.app import SKIP_BUNDLING, build_app, read_cdk_json_context  # noqa: E402
from infra_cdk.stack import StrataStack  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.infra)


@dataclass(frozen=True)
class Synthesized:
    stack: StrataStack
    template: Template
    annotations: Annotations
    outdir: Path


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """The app built from ``cdk.json`` and synthesized once (bundling skipped)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    _, stack = build_app(context=read_cdk_json_context(), post_cli_context=SKIP_BUNDLING, outdir=str(outdir))
    try:
        template = Template.from_stack(stack)
    except RuntimeError as exc:  # unsuppressed cdk-nag errors fail synthesis (cdk.json feature flags)
        pytest.fail(f"synthesis failed; the findings are printed above: {exc}")
    return Synthesized(stack=stack, template=template, annotations=Annotations.from_stack(stack), outdir=outdir)


@pytest.fixture(scope="session")
def template(synthesized: Synthesized) -> Template:
    return synthesized.template


@pytest.fixture(scope="session")
def stack(synthesized: Synthesized) -> StrataStack:
    return synthesized.stack
