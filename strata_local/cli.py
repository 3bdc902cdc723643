"""The ``strata`` command: ``strata dev`` runs the local stack, ``strata keys create`` issues keys."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

DEFAULT_STATE_DIR = Path(".strata")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="strata", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the local stack (no AWS account needed)")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8000, help="gateway: API and chat UI (default 8000)")
    dev.add_argument("--model-port", type=int, default=8080, help="model server (default 8080)")
    dev.add_argument("--aws-port", type=int, default=4566, help="moto: S3, SQS, DynamoDB (default 4566)")
    dev.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    dev.add_argument("--documents", type=Path, default=Path("documents"), help="watched folder (default documents/)")
    dev.add_argument("--tenant", default="dev", help="the development tenant (default dev)")
    dev.add_argument("--ingest-retry", type=int, default=5, help="seconds before a failed ingestion is retried")
    dev.add_argument(
        "--models",
        type=Path,
        default=os.environ.get("STRATA_MODELS_FILE") or None,
        metavar="FILE",
        help="model registry (YAML: aliases → provider targets, fallbacks); default $STRATA_MODELS_FILE, "
        "else the local model server as 'default'",
    )
    dev.add_argument("--verbose", action="store_true")
    dev.set_defaults(run=_dev)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create an API key for a tenant (the secret is printed once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    create.add_argument(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="read the local stack's environment from STATE_DIR/local.env if present",
    )
    create.set_defaults(run=_create_key)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document of the public API")
    openapi.set_defaults(run=_openapi)

    args = parser.parse_args(argv)
    return args.run(args)


def _dev(args: argparse.Namespace) -> int:
    from strata_local.stack import LocalStack, LocalStackConfig

    _configure_logging(args.state_dir / "logs" / "strata.log", verbose=args.verbose)
    if not args.verbose:
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    config = LocalStackConfig(
        host=args.host,
        port=args.port,
        model_port=args.model_port,
        aws_port=args.aws_port,
        state_dir=args.state_dir,
        documents_dir=args.documents,
        dev_tenant=args.tenant,
        ingest_retry_s=args.ingest_retry,
        models_file=args.models,
    )
    try:
        LocalStack(config).run()
    except (RuntimeError, TimeoutError) as error:  # a busy port, a model server that would not start
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _create_key(args: argparse.Namespace) -> int:
    from strata.auth import InvalidTenantError, build_key_store
    from strata.config import Settings
    from strata_local.env_file import load_env_file

    load_env_file(args.state_dir / "local.env")
    settings = Settings()
    try:
        issued = build_key_store(settings).create(args.tenant, name=args.name)
    except (InvalidTenantError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # the table is unreachable: say where we looked
        where = settings.aws_endpoint_url or "AWS"
        print(f"error: cannot write the keys table {settings.keys_table!r} at {where}: {error}", file=sys.stderr)
        return 1
    print(f"API key for tenant {issued.tenant} (shown once, store it now):\n{issued.secret}")
    return 0


def _openapi(_: argparse.Namespace) -> int:
    import json

    from functions.openapi import public_openapi

    print(json.dumps(public_openapi(), indent=2))
    return 0


def _configure_logging(log_file: Path, *, verbose: bool) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    console = logging.StreamHandler()
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    file = logging.FileHandler(log_file)
    file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.addHandler(console)
    root.addHandler(file)
    logging.getLogger("strata").setLevel(logging.DEBUG if verbose else logging.INFO)
    # moto's server logs every request through werkzeug at INFO.
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.WARNING)


if __name__ == "__main__":
    sys.exit(main())
