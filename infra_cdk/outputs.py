"""Point the ``strata`` admin commands at a deployed stage.

``cdk deploy --outputs-file cdk-outputs.json`` writes the stack's outputs; this prints them as the
``STRATA_*`` variables the commands read (see ``StrataStack``'s ``Admin*`` outputs)::

    eval "$(.venv/bin/python -m infra_cdk.outputs cdk-outputs.json)"
    .venv/bin/strata keys create --tenant acme --state-dir /nonexistent
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from infra_cdk.stack import ADMIN_FIELDS, admin_output_name


def admin_environment(outputs: Mapping[str, str], region: str | None = None) -> dict[str, str]:
    """The ``STRATA_*`` variables from one stack's outputs; raises ``KeyError`` naming a missing one."""
    environment = {f"STRATA_{field.upper()}": outputs[admin_output_name(field)] for field in ADMIN_FIELDS}
    environment["STRATA_VECTOR_STORE"] = "opensearch"
    if "SearchEndpoint" in outputs:
        environment["STRATA_OPENSEARCH_ENDPOINT"] = outputs["SearchEndpoint"]
    if region:
        environment["STRATA_AWS_REGION"] = region
    return environment


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra_cdk.outputs", description=__doc__.splitlines()[0])
    parser.add_argument("outputs_file", type=Path, help="the file `cdk deploy --outputs-file` wrote")
    parser.add_argument("--stack", help="the stack's name (default: the only one in the file)")
    parser.add_argument("--region", help="the stage's region (STRATA_AWS_REGION)")
    args = parser.parse_args(argv)
    stacks = json.loads(args.outputs_file.read_text())
    name = args.stack or (next(iter(stacks)) if len(stacks) == 1 else None)
    if name not in stacks:
        print(f"error: name one of the stacks with --stack: {', '.join(stacks)}", file=sys.stderr)
        return 2
    try:
        environment = admin_environment(stacks[name], args.region)
    except KeyError as missing:
        print(f"error: {args.outputs_file} has no output {missing} (deployed by an older version?)", file=sys.stderr)
        return 2
    for key, value in environment.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
