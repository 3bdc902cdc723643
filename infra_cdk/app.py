"""The CDK app: ``cdk synth`` runs ``python -m infra_cdk.app`` (see ``cdk.json``).

Offline, without the CDK CLI::

    .venv/bin/python -m infra_cdk.app                   # bundles the layer (pip, no Docker)
    .venv/bin/python -m infra_cdk.app --no-bundling     # template only, nothing is built

Both read ``cdk.json``'s context; under the CLI, ``-c`` values override it. The stage is
``strata.stage`` (``dev``) unless ``-c stage=prod`` (or ``--stage prod``) names another of
``strata.environments``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aws_cdk import App, Aspects, Environment
from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks, NIST80053R5Checks

from infra_cdk.config import CONTEXT_KEY, StrataConfig
from infra_cdk.nag import suppress_reviewed_findings
from infra_cdk.stack import PROJECT_ROOT, StrataStack

CDK_JSON = PROJECT_ROOT / "cdk.json"
SKIP_BUNDLING: Mapping[str, Any] = {"aws:cdk:bundling-stacks": []}
"""Context that makes CDK skip asset bundling (assets point at their source folder)."""
STAGE_KEY = "stage"
"""The context key (``cdk deploy -c stage=prod``) that picks one of ``strata.environments``."""
NAG_PACKS = {"HIPAA.Security": HIPAASecurityChecks, "NIST.800.53.R5": NIST80053R5Checks}


def read_cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The ``context`` object of ``cdk.json``."""
    return dict(json.loads(path.read_text()).get("context", {}))


def build_app(
    *,
    context: Mapping[str, Any] | None = None,
    post_cli_context: Mapping[str, Any] | None = None,
    outdir: str | None = None,
    account: str | None = None,
    stage: str | None = None,
) -> tuple[App, StrataStack]:
    """Build the app and its one stack, with cdk-nag's AWS Solutions checks applied.

    Parameters
    ----------
    context
        Default context (``cdk.json``'s); context the CLI passes in the environment wins over it.
    post_cli_context
        Context that wins over everything, e.g. :data:`SKIP_BUNDLING`.
    outdir
        Cloud assembly directory. Default: the CLI's, else a temporary one.
    account
        Target account; ``None`` synthesizes an account-agnostic template.
    stage
        One of ``strata.environments``. Default: the ``stage`` context value, else ``strata.stage``.
    """
    app = App(context=dict(context or {}), post_cli_context=dict(post_cli_context or {}), outdir=outdir)
    config = StrataConfig.from_context(
        app.node.try_get_context(CONTEXT_KEY), stage=stage or app.node.try_get_context(STAGE_KEY)
    )
    stack = StrataStack(
        app,
        f"strata-{config.stage}",
        config=config,
        env=Environment(account=account, region=config.region),
        description=f"Strata serverless AI stack ({config.stage})",
    )
    suppress_reviewed_findings(stack)
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    for pack in config.nag_packs:
        Aspects.of(app).add(NAG_PACKS[pack](verbose=True))
    return app, stack


def synthesize_template(stage: str, *, context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation template of ``stage`` as a dict (``cdk.json``'s context unless
    ``context`` is given; bundling skipped, so nothing is built)."""
    with tempfile.TemporaryDirectory(prefix="strata-synth-") as outdir:
        app, stack = build_app(
            context=read_cdk_json_context() if context is None else context,
            post_cli_context=SKIP_BUNDLING,
            outdir=outdir,
            stage=stage,
        )
        return dict(app.synth().get_stack_by_name(stack.stack_name).template)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m infra_cdk.app", description=__doc__.splitlines()[0])
    parser.add_argument("--no-bundling", action="store_true", help="skip asset bundling (no pip)")
    parser.add_argument("--outdir", help="cloud assembly directory (default: the CLI's, else cdk.out)")
    parser.add_argument("--stage", help="one of strata.environments in cdk.json (default: strata.stage)")
    args = parser.parse_args(argv)
    outdir = args.outdir or (None if "CDK_OUTDIR" in os.environ else "cdk.out")
    app, _ = build_app(
        context=read_cdk_json_context(),
        post_cli_context=SKIP_BUNDLING if args.no_bundling else None,
        outdir=outdir,
        account=os.environ.get("CDK_DEFAULT_ACCOUNT"),
        stage=args.stage,
    )
    app.synth()


if __name__ == "__main__":
    main()
