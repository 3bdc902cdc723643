"""The ``strata`` command: ``strata dev`` runs the local stack; ``strata keys``, ``strata limits`` and
``strata prompts`` manage keys, tenant limits and prompt templates in the tables the environment
points at (the local stack's, or AWS)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from strata.config import Scope, Settings
from strata_local.cost import add_cost_command
from strata_local.evaluate import add_eval_command
from strata_local.report import add_report_commands

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
    dev.add_argument(
        "--scale-to-zero",
        type=float,
        metavar="IDLE_S",
        help="the chat model scales to zero after IDLE_S idle seconds, as on SageMaker (default: always on)",
    )
    dev.add_argument("--wake-s", type=float, metavar="WAKE_S", help="with --scale-to-zero: seconds a wake takes (20)")
    dev.add_argument("--verbose", action="store_true")
    dev.set_defaults(run=_dev)

    keys = commands.add_parser("keys", help="API keys").add_subparsers(dest="keys_command", required=True)
    create = keys.add_parser("create", help="create an API key for a tenant (the secret is printed once)")
    create.add_argument("--tenant", required=True)
    create.add_argument("--name", default="")
    create.add_argument(
        "--scopes", type=_scopes, default=frozenset({Scope.CHAT}), help="comma-separated (default chat)"
    )
    create.add_argument("--rpm", type=_positive, default=None, help="requests per minute for this key")
    create.add_argument("--tpm", type=_positive, default=None, help="tokens per minute for this key")
    create.add_argument("--expires-in-days", type=_positive, default=None)
    create.set_defaults(run=_create_key)
    listing = keys.add_parser("list", help="a tenant's keys (never their secrets)")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(run=_list_keys)
    revoke = keys.add_parser("revoke", help="revoke a key (effective within the authorizer cache TTL)")
    revoke.add_argument("key_id")
    revoke.add_argument("--tenant", required=True)
    revoke.set_defaults(run=_revoke_key)

    limits = commands.add_parser("limits", help="tenant limits").add_subparsers(dest="limits_command", required=True)
    set_limits = limits.add_parser("set", help="set a tenant's rate limits and daily token quota")
    set_limits.add_argument("--tenant", required=True)
    set_limits.add_argument("--rpm", type=_positive, default=None, help="requests per minute")
    set_limits.add_argument("--tpm", type=_positive, default=None, help="tokens per minute")
    set_limits.add_argument("--tokens-per-day", type=_positive, default=None)
    set_limits.set_defaults(run=_set_limits)
    show_limits = limits.add_parser("show", help="a tenant's limits")
    show_limits.add_argument("--tenant", required=True)
    show_limits.set_defaults(run=_show_limits)

    tenants = commands.add_parser("tenants", help="tenant policy").add_subparsers(dest="tenants_command", required=True)
    pii = tenants.add_parser("pii", help="redact personal data in a tenant's answers (on by default), or not")
    pii.add_argument("state", choices=("on", "off"))
    pii.add_argument("--tenant", required=True)
    pii.set_defaults(run=_set_pii_redaction)
    chunking = tenants.add_parser("chunking", help="how the tenant's documents are chunked from now on")
    chunking.add_argument("--tenant", required=True)
    sizes = chunking.add_mutually_exclusive_group(required=True)
    sizes.add_argument("--tokens", type=_positive, help="tokens per chunk (16 to 254)")
    sizes.add_argument("--default", action="store_true", help="back to the stack's default")
    chunking.add_argument("--overlap", type=int, default=0, help="tokens shared by consecutive chunks")
    chunking.set_defaults(run=_set_chunking)

    prompt_commands = _add_prompt_commands(commands)

    for command in (create, listing, revoke, set_limits, show_limits, pii, chunking, *prompt_commands):
        command.add_argument(
            "--state-dir",
            type=Path,
            default=DEFAULT_STATE_DIR,
            help="read the local stack's environment from STATE_DIR/local.env if present",
        )

    openapi = commands.add_parser("openapi", help="print the OpenAPI document of the public API")
    openapi.set_defaults(run=_openapi)
    add_report_commands(commands)
    add_eval_command(commands)
    add_cost_command(commands)

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
        scale_to_zero_after_s=args.scale_to_zero,
        wake_s=args.wake_s,
    )
    try:
        LocalStack(config).run()
    except (RuntimeError, TimeoutError) as error:  # a busy port, a model server that would not start
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _scopes(value: str) -> frozenset[Scope]:
    try:
        return frozenset(Scope(part.strip()) for part in value.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"unknown scope in {value!r}: use {', '.join(s.value for s in Scope)}"
        ) from None


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def _admin(args: argparse.Namespace, action: Callable[[Settings], str]) -> int:
    """Run an admin action against the tables the local environment (or AWS) points at."""
    from strata.auth import AuthError, InvalidTenantError, KeyNotFoundError
    from strata.prompts import PromptsError
    from strata_local.env_file import load_env_file

    load_env_file(args.state_dir / "local.env")
    settings = Settings()
    try:
        print(action(settings))
    except (InvalidTenantError, AuthError, KeyNotFoundError, PromptsError, RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a table that cannot be reached: say where we looked
        where = settings.aws_endpoint_url or "AWS"
        print(f"error: cannot reach the tables at {where}: {error}", file=sys.stderr)
        return 1
    return 0


def _create_key(args: argparse.Namespace) -> int:
    from strata.auth import build_key_store
    from strata.throttle import Limits

    def create(settings: Settings) -> str:
        expires = datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
        issued = build_key_store(settings).create(
            args.tenant,
            name=args.name,
            scopes=args.scopes,
            limits=Limits(requests_per_minute=args.rpm, tokens_per_minute=args.tpm),
            expires_at=expires,
        )
        return f"API key {issued.key_id} for tenant {issued.tenant} (shown once, store it now):\n{issued.secret}"

    return _admin(args, create)


def _list_keys(args: argparse.Namespace) -> int:
    from strata.auth import build_key_store

    def listing(settings: Settings) -> str:
        rows = [
            f"{k.key_id}  {','.join(sorted(k.scopes)):<28} {'revoked' if k.revoked_at else 'active':<8} {k.name}"
            for k in build_key_store(settings).list(args.tenant)
        ]
        return "\n".join(rows) if rows else f"no keys for tenant {args.tenant}"

    return _admin(args, listing)


def _revoke_key(args: argparse.Namespace) -> int:
    from strata.auth import build_key_store
    from strata.config import RESOURCES

    def revoke(settings: Settings) -> str:
        record = build_key_store(settings).revoke(args.tenant, args.key_id)
        ttl = RESOURCES.api.authorizer_cache_ttl_s
        return f"revoked {record.key_id}; requests with it are refused within {ttl} s (the authorizer cache)"

    return _admin(args, revoke)


def _set_limits(args: argparse.Namespace) -> int:
    from strata.auth import build_tenant_store
    from strata.throttle import Limits

    def set_limits(settings: Settings) -> str:
        limits = Limits(requests_per_minute=args.rpm, tokens_per_minute=args.tpm, tokens_per_day=args.tokens_per_day)
        saved = build_tenant_store(settings).set_limits(args.tenant, limits)
        return f"limits for tenant {args.tenant}: {_describe(saved)}"

    return _admin(args, set_limits)


def _show_limits(args: argparse.Namespace) -> int:
    from strata.auth import build_tenant_store

    return _admin(args, lambda settings: _describe(build_tenant_store(settings).get_limits(args.tenant)))


def _set_pii_redaction(args: argparse.Namespace) -> int:
    from strata.auth import build_tenant_store
    from strata.config import RESOURCES

    def switch(settings: Settings) -> str:
        build_tenant_store(settings).set_pii_redaction(args.tenant, args.state == "on")
        ttl = RESOURCES.api.authorizer_cache_ttl_s
        return f"personal data in tenant {args.tenant}'s answers: redaction {args.state} (within {ttl} s)"

    return _admin(args, switch)


def _set_chunking(args: argparse.Namespace) -> int:
    from strata.auth import build_tenant_store

    def set_chunking(settings: Settings) -> str:
        tokens = None if args.default else args.tokens
        build_tenant_store(settings).set_chunking(args.tenant, tokens, args.overlap)
        size = "the default size" if tokens is None else f"{tokens} tokens, {args.overlap} overlapping"
        return f"tenant {args.tenant}'s documents are chunked in {size} from now on (re-upload to re-chunk)"

    return _admin(args, set_chunking)


def _describe(limits: Any) -> str:
    parts = [f"{name}={value if value is not None else 'unlimited'}" for name, value in limits.model_dump().items()]
    return ", ".join(parts)


def _add_prompt_commands(commands: Any) -> list[argparse.ArgumentParser]:
    """``strata prompts ...``; returns the subcommands (each gets ``--state-dir``)."""
    prompts = commands.add_parser("prompts", help="prompt templates: versions, labels, rendering")
    actions = prompts.add_subparsers(dest="prompts_command", required=True)

    create = actions.add_parser("create", help="create the next version of a prompt (1 for a new name)")
    create.add_argument("name")
    create.add_argument("--tenant", required=True)
    source = create.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", type=Path, help="read the template (Jinja2) from FILE")
    source.add_argument("--template", help="the template (Jinja2) itself")
    create.add_argument("--description", default="")
    create.add_argument(
        "--variable",
        dest="variables",
        type=_prompt_variable,
        action="append",
        default=[],
        metavar="NAME[=DEFAULT]",
        help="a variable the template uses; with a default it is optional (repeat for each)",
    )
    create.add_argument(
        "--label", dest="labels", action="append", default=[], help="point this label at the new version"
    )
    create.set_defaults(run=_create_prompt)

    listing = actions.add_parser("list", help="the latest version of each of a tenant's prompts")
    listing.add_argument("--tenant", required=True)
    listing.set_defaults(run=_list_prompts)

    show = actions.add_parser("show", help="one version of a prompt (the latest by default)")
    show.add_argument("name")
    show.add_argument("--tenant", required=True)
    _add_version_or_label(show)
    show.set_defaults(run=_show_prompt)

    versions = actions.add_parser("versions", help="every version of a prompt, with its labels")
    versions.add_argument("name")
    versions.add_argument("--tenant", required=True)
    versions.set_defaults(run=_prompt_versions)

    label = actions.add_parser("label", help="point a label at a version (move it back to roll back)")
    label.add_argument("name")
    label.add_argument("label")
    label.add_argument("version", type=_positive)
    label.add_argument("--tenant", required=True)
    label.set_defaults(run=_label_prompt)

    render = actions.add_parser(
        "render", help="print a prompt rendered as a chat request would get it (production, else the latest)"
    )
    render.add_argument("name")
    render.add_argument("--tenant", required=True)
    _add_version_or_label(render)
    render.add_argument("--var", dest="values", type=_key_value, action="append", default=[], metavar="KEY=VALUE")
    render.set_defaults(run=_render_prompt)
    return [create, listing, show, versions, label, render]


def _add_version_or_label(command: argparse.ArgumentParser) -> None:
    which = command.add_mutually_exclusive_group()
    which.add_argument("--version", type=_positive, default=None)
    which.add_argument("--label", default=None)


def _prompt_variable(value: str) -> Any:
    from strata.prompts import PromptVariable, validate_variable_name

    name, has_default, default = value.partition("=")
    try:
        validate_variable_name(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(getattr(error, "reason", str(error))) from None
    return PromptVariable(name=name, default=default if has_default else None)


def _key_value(value: str) -> tuple[str, str]:
    key, has_value, text = value.partition("=")
    if not has_value or not key:
        raise argparse.ArgumentTypeError(f"{value!r} is not KEY=VALUE")
    return key, text


def _create_prompt(args: argparse.Namespace) -> int:
    from strata.prompts import build_prompt_store

    if args.file is not None:
        try:
            template = args.file.read_text()
        except (OSError, UnicodeDecodeError) as error:
            print(f"error: cannot read {args.file}: {error}", file=sys.stderr)
            return 2
    else:
        template = args.template

    def create(settings: Settings) -> str:
        prompt = build_prompt_store(settings).create(
            args.tenant,
            args.name,
            template,
            description=args.description,
            variables=args.variables,
            labels=args.labels,
        )
        labels = f" (labels: {', '.join(prompt.labels)})" if prompt.labels else ""
        return f"created prompt {prompt.name} version {prompt.version} for tenant {prompt.tenant}{labels}"

    return _admin(args, create)


def _list_prompts(args: argparse.Namespace) -> int:
    from strata.prompts import build_prompt_store

    def listing(settings: Settings) -> str:
        rows = [
            f"{p.name:<24} v{p.version:<6} {','.join(p.labels) or '-':<24} {p.description}".rstrip()
            for p in build_prompt_store(settings).list(args.tenant)
        ]
        return "\n".join(rows) if rows else f"no prompts for tenant {args.tenant}"

    return _admin(args, listing)


def _show_prompt(args: argparse.Namespace) -> int:
    from strata.prompts import build_prompt_store

    def show(settings: Settings) -> str:
        prompt = build_prompt_store(settings).get(args.tenant, args.name, args.version, label=args.label)
        variables = ", ".join(
            f"{v.name} (default {v.default!r})"
            if v.default is not None
            else f"{v.name} ({'required' if v.required else 'optional'})"
            for v in prompt.variables
        )
        lines = [
            f"prompt {prompt.name} version {prompt.version} (tenant {prompt.tenant})",
            f"labels: {', '.join(prompt.labels) or '-'}",
            f"variables: {variables or '-'}",
            f"created: {prompt.created_at.isoformat()}" + (f" by {prompt.created_by}" if prompt.created_by else ""),
        ]
        if prompt.description:
            lines.append(f"description: {prompt.description}")
        return "\n".join([*lines, "---", prompt.template.removesuffix("\n")])

    return _admin(args, show)


def _prompt_versions(args: argparse.Namespace) -> int:
    from strata.prompts import build_prompt_store

    def versions(settings: Settings) -> str:
        return "\n".join(
            f"v{p.version:<6} {p.created_at:%Y-%m-%d %H:%M:%S} {','.join(p.labels) or '-':<24} {p.description}".rstrip()
            for p in build_prompt_store(settings).versions(args.tenant, args.name)
        )

    return _admin(args, versions)


def _label_prompt(args: argparse.Namespace) -> int:
    from strata.prompts import build_prompt_store
    from strata.prompts.store import DEFAULT_LABEL_TTL_S

    def label(settings: Settings) -> str:
        moved = build_prompt_store(settings).set_label(args.tenant, args.name, args.label, args.version)
        was = "" if moved.previous_version is None else f" (was version {moved.previous_version})"
        return (
            f"label {moved.label} of prompt {moved.name} now points at version {moved.version}{was}; "
            f"chat requests get it within {DEFAULT_LABEL_TTL_S:g} s"
        )

    return _admin(args, label)


def _render_prompt(args: argparse.Namespace) -> int:
    from strata.prompts import build_prompt_store, render_prompt

    def render(settings: Settings) -> str:
        prompt = build_prompt_store(settings).resolve(args.tenant, args.name, version=args.version, label=args.label)
        return render_prompt(prompt, dict(args.values)).removesuffix("\n")

    return _admin(args, render)


def _openapi(_: argparse.Namespace) -> int:
    import json

    from functions.openapi import public_openapi

    print(json.dumps(public_openapi(), indent=2))
    return 0


def _configure_logging(log_file: Path, *, verbose: bool) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    console = logging.StreamHandler()
    console.setFormatter(_ConsoleFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    # One line per request goes to the log file, not the console.
    console.addFilter(lambda record: record.name != "strata.requests")
    file = logging.FileHandler(log_file)
    file.setFormatter(_SafeFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.addHandler(console)
    root.addHandler(file)
    logging.getLogger("strata").setLevel(logging.DEBUG if verbose else logging.INFO)
    # moto's server logs every request through werkzeug at INFO.
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.WARNING)


class _SafeFormatter(logging.Formatter):
    """A record is one line: control characters in its message (an object key may hold any, an
    escape sequence among them) are written escaped, so they can neither forge a line nor drive
    the terminal. A traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        from strata.documents.keys import printable  # here: the CLI's other commands start faster

        return printable(super().formatMessage(record), limit=1_000_000)


class _ConsoleFormatter(_SafeFormatter):
    """One line per record: an exception shows as its last line (the file keeps the traceback)."""

    def formatException(self, exc_info: Any) -> str:  # noqa: N802 - logging's name
        text = super().formatException(exc_info).strip().splitlines()
        return f"  ({text[-1]}; traceback in the log file)" if text else ""

    def format(self, record: logging.LogRecord) -> str:
        saved, record.exc_text = record.exc_text, None  # logging caches it: keep the file's whole
        try:
            return super().format(record).replace("\n", " ")
        finally:
            record.exc_text = saved


if __name__ == "__main__":
    sys.exit(main())
