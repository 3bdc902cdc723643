"""``strata cost``: what a deployment costs a month, the idle floor apart from the per-use cost.

Synthesizes the stage's template (offline, bundling skipped; 15-20 s) or reads one from a cloud
assembly, prices it with ``infra_cdk/cost/prices.json`` under the stage's traffic profile from
``infra_cdk/cost/profiles.json``, and prints a table, or one JSON object with ``--json``::

    strata cost --stage dev [--json] [--template cdk.out/strata-dev.template.json]
                [--profile FILE] [--always-on]

The JSON object holds ``idle_monthly_usd``, ``usage_monthly_usd``, ``monthly_usd``, ``resources``
(``logical_id``, ``type``, ``idle_monthly_usd``, ``usage_monthly_usd``, ``basis``), ``unpriced``,
``no_charge`` and ``assumptions``. Exit status 2 on a bad profile, price table, template or
configuration, 1 when the stage does not synthesize.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from infra_cdk.cost import CostModelError, Estimate, estimate, load_prices, load_profile, load_profile_file

SHOWN_FROM_USD = 0.01
"""The table lists resources from a cent a month; the JSON lists every one."""


def add_cost_command(commands: Any) -> None:
    """Add ``strata cost`` to the ``strata`` command's subparsers."""
    parser = commands.add_parser("cost", help="estimate a deployment's monthly cost: idle floor and per-use")
    parser.add_argument("--stage", default="dev", help="the environment in cdk.json, and its profile (default dev)")
    parser.add_argument("--template", type=Path, help="price this template (e.g. from cdk.out) instead of synthesizing")
    parser.add_argument("--profile", type=Path, help="a JSON file holding one traffic profile (default: the stage's)")
    parser.add_argument(
        "--always-on",
        action="store_true",
        help="pin every autoscaled endpoint at its max instances around the clock (no autoscaling)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(run=run_cost_command)


def run_cost_command(args: argparse.Namespace) -> int:
    try:
        profile = load_profile_file(args.profile) if args.profile else load_profile(args.stage)
        prices = load_prices()
        template = _read_template(args.template) if args.template else _synthesize(args.stage)
    except (CostModelError, OSError, ValueError) as error:  # a bad profile, price table, template or config
        print(f"error: {error}", file=sys.stderr)
        return 2
    except RuntimeError as error:  # the CDK (jsii) failed to synthesize the stage
        print(f"error: cannot synthesize stage {args.stage}: {error}", file=sys.stderr)
        return 1
    result = estimate(template, profile, prices, always_on=args.always_on)
    if args.json:
        print(json.dumps({"stage": args.stage, **result.to_json()}, indent=2))
    else:
        print(render_table(result, title=f"strata-{args.stage}: {profile.description or 'profile'}"))
    return 0


def render_table(result: Estimate, *, title: str) -> str:
    """The estimate as a plain-text table, largest cost first."""
    shown = [r for r in result.resources if r.idle_monthly_usd + r.usage_monthly_usd >= SHOWN_FROM_USD]
    width = min(44, max((len(r.logical_id) for r in shown), default=10))
    lines = [title, "", f"{'resource':<{width}}  {'idle $/mo':>10}  {'use $/mo':>10}  basis"]
    for r in shown:
        lines.append(f"{r.logical_id:<{width}}  {r.idle_monthly_usd:>10.2f}  {r.usage_monthly_usd:>10.2f}  {r.basis}")
    if len(shown) < len(result.resources):
        lines.append(f"({len(result.resources) - len(shown)} more under ${SHOWN_FROM_USD} a month each: see --json)")
    lines += [
        f"{'total':<{width}}  {result.idle_monthly_usd:>10.2f}  {result.usage_monthly_usd:>10.2f}",
        "",
        f"monthly: ${result.monthly_usd:,.2f} (idle floor ${result.idle_monthly_usd:,.2f})"
        + ("; autoscaled endpoints pinned at their max" if result.always_on else ""),
    ]
    if result.unpriced:
        lines += ["", "UNPRICED (not in the totals):"]
        lines += [f"  {u.logical_id} ({u.type}): {u.reason}" for u in result.unpriced]
    lines += ["", "no charge: " + ", ".join(f"{kind} × {n}" for kind, n in result.no_charge.items())]
    lines += ["", "assumptions:"] + [f"  - {a}" for a in result.assumptions]
    return "\n".join(lines)


def _read_template(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or "Resources" not in data:
        raise ValueError(f"{path} is not a CloudFormation template (no Resources)")
    return data


def _synthesize(stage: str) -> dict[str, Any]:
    # jsii prints a banner about Node 20 on every start; the CDK is imported only when synthesizing.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from infra_cdk.app import synthesize_template

    return synthesize_template(stage)
