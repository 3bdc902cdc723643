"""Handler cold start: each Lambda entry point imported in a fresh process, as Lambda lays it out.

.venv/bin/python -m bench.cold_start [--runs 5] [--workdir DIR]

The project's venv holds far more than a Lambda does (torch, moto, the optional speed-ups that
libraries import when present), so the handlers are imported from a Lambda-like tree instead:
the layer built by :class:`~infra_cdk.bundling.LayerBundler` for this machine's platform and
Python (``/opt/python``), the function asset (``/var/task``) and boto3, which the Lambda runtime
ships (``/var/runtime``); ``python -S`` keeps the venv's site-packages off ``sys.path``. The
environment is the deployed one (``STRATA_*`` names, no local endpoint URLs).

Each handler is timed two ways, in the same invocation as the bare ``python -S -c pass`` baseline:

- ``source``: what Lambda does today. The layer ships no bytecode (pip runs ``--no-compile``:
  this interpreter's ``.pyc`` would not match the 3.12 runtime) and ``/opt`` is read-only, so
  every cold start compiles the layer's modules from source.
- ``bytecode``: the same tree after ``compileall``, i.e. a layer that ships matching bytecode.

``tests/infra/test_packaging.py`` checks *what* each handler imports against
``bench/cold_start_budget.toml``; the wall-clock figures are only printed here.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO_ROOT, machine, median
from infra_cdk.bundling import LayerBundler, SourceTreeBundler, run_checked
from strata.config.settings import ENV_PREFIX, Settings

BUDGET_FILE = Path(__file__).resolve().parent / "cold_start_budget.toml"
START_MARKER = "--strata-handler-import--"
"""Written to stderr just before the handler's import: ``-X importtime`` lines after it are the handler's."""
RUNTIME_PACKAGES = ("boto3",)
"""What the Lambda Python runtime itself provides on ``sys.path`` (``/var/runtime``)."""

# The deployed functions' settings (infra_cdk/constructs/functions.py): resource names instead of the
# local defaults, the managed vector store, no endpoint URL (moto, the local model server) and no tokenizer.
DEPLOYED_SETTINGS: dict[str, str] = {
    "aws_region": "us-east-1",
    "documents_bucket": "strata-documents-0123456789ab",
    "tenant_prefix": "tenants/",
    "ingest_queue": "strata-ingest",
    "ingest_dlq": "strata-ingest-dlq",
    "keys_table": "strata-keys",
    "documents_table": "strata-documents",
    "breakers_table": "strata-breakers",
    "response_cache_table": "strata-response-cache",
    "tenants_table": "strata-tenants",
    "rate_limits_table": "strata-rate-limits",
    "prompts_table": "strata-prompts",
    "feedback_table": "strata-feedback",
    "chat_endpoint": "strata-chat",
    "chat_inference_component": "strata-chat-component",
    "chat_context_window": "4096",
    "chat_tokenizer": "",
    "embedding_endpoint": "strata-embed",
    "vector_store": "opensearch",
    "opensearch_endpoint": "https://search-strata-0123456789.us-east-1.es.amazonaws.com",
    "opensearch_index": "strata-chunks",
    "opensearch_serverless": "false",
    "interactions_bucket": "strata-interactions-0123456789ab",
    "cors_origins": "https://d111111abcdef8.cloudfront.net",
    "metrics_namespace": "Strata",
    "key_pepper_secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:strata-pepper-AbCdEf",
}
LAMBDA_RUNTIME_ENV: dict[str, str] = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
    "POWERTOOLS_METRICS_NAMESPACE": "Strata",
    "LANG": "en_US.UTF-8",
    # /opt is read-only in Lambda: nothing the import compiles is kept for the next cold start.
    "PYTHONDONTWRITEBYTECODE": "1",
}


@dataclass(frozen=True, slots=True)
class Handler:
    """A Lambda entry point: the modules its process imports before it serves the first request."""

    name: str
    modules: tuple[str, ...]
    budget_ms: float | None
    """The issue's budget for the handler's import (``None``: none set, reported only)."""


HANDLERS: tuple[Handler, ...] = (
    Handler("authorizer", ("functions.authorizer.app",), 150.0),
    # run.sh: `python -m uvicorn app:app` imports uvicorn, then the app, before LWA's first request.
    Handler("chat", ("uvicorn", "functions.chat.app"), 400.0),
    Handler("api", ("functions.api.app",), None),
    Handler("ingest", ("functions.ingest.app",), None),
)


@dataclass(frozen=True, slots=True)
class LambdaTree:
    """The three folders a deployed function's ``sys.path`` holds, in Lambda's order."""

    layer: Path
    code: Path
    runtime: Path

    @property
    def python_path(self) -> str:
        return os.pathsep.join(str(folder) for folder in (self.layer / "python", self.code, self.runtime))


@dataclass(frozen=True, slots=True)
class ImportRun:
    """One fresh process that imported a handler."""

    wall_s: float
    """From spawning the interpreter to its exit."""
    cpu_s: float
    """The process's user + system CPU time: what load from other processes on the machine inflates least."""
    handler_us: int
    """``-X importtime`` cumulative of the handler's imports (what the interpreter's start did not import)."""
    modules: frozenset[str]
    """``sys.modules`` after the import."""
    self_us_by_package: Mapping[str, int]
    """``-X importtime`` self time of the handler's imports, summed per :func:`package_of` their module."""


def lambda_tree_under(destination: Path) -> LambdaTree:
    return LambdaTree(layer=destination / "opt", code=destination / "task", runtime=destination / "runtime")


def build_lambda_tree(destination: Path, *, project_root: Path = REPO_ROOT) -> LambdaTree:
    """Bundle the layer and the function code for this machine, plus the runtime's boto3, under ``destination``."""
    architecture = {"x86_64": "x86_64", "aarch64": "arm64"}[os.uname().machine]
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    tree = lambda_tree_under(destination)
    LayerBundler(project_root=project_root, architecture=architecture, python_version=python_version).try_bundle(
        str(tree.layer)
    )
    SourceTreeBundler(source=project_root / "functions").try_bundle(str(tree.code))
    run_checked(
        [
            sys.executable, "-m", "pip", "install", "--target", str(tree.runtime),
            "--only-binary=:all:", "--no-compile", "--disable-pip-version-check", "--quiet",
            *RUNTIME_PACKAGES,
        ]
    )  # fmt: skip
    return tree


def lambda_environment(tree: LambdaTree) -> dict[str, str]:
    """The environment a deployed function starts with: no ``STRATA_*`` from this shell, the deployed names."""
    unknown = sorted(set(DEPLOYED_SETTINGS) - set(Settings.model_fields))
    if unknown:
        raise KeyError(
            f"Settings has no field {unknown}; update DEPLOYED_SETTINGS from infra_cdk/constructs/functions.py"
        )
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": tempfile.gettempdir(),
        "PYTHONPATH": tree.python_path,
        **LAMBDA_RUNTIME_ENV,
        **{f"{ENV_PREFIX}{field.upper()}": value for field, value in DEPLOYED_SETTINGS.items()},
    }


def import_script(modules: Sequence[str]) -> str:
    """Imports ``modules`` after the start marker, then prints ``sys.modules`` (importing nothing more)."""
    return (
        f"import sys\nsys.stderr.write({START_MARKER!r} + '\\n')\nsys.stderr.flush()\n"
        + "".join(f"import {module}\n" for module in modules)
        + "sys.stdout.write('\\n'.join(sorted(sys.modules)))\n"
    )


_IMPORTTIME_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)$")


def _handler_entries(stderr: str) -> list[tuple[int, int, bool, str]]:
    """``(self_us, cumulative_us, outermost, module)`` of each ``-X importtime`` line after :data:`START_MARKER`.

    Failed imports (optional dependencies a library tries) are timed too, as CPython does.
    """
    _, found, after = stderr.partition(START_MARKER)
    if not found:
        raise ValueError("the import process wrote no start marker")
    entries = []
    for line in after.splitlines():
        match = _IMPORTTIME_LINE.match(line)
        if match:
            entries.append((int(match.group(1)), int(match.group(2)), not match.group(3), match.group(4)))
    return entries


def handler_cumulative_us(stderr: str) -> int:
    """Sum of the outermost ``-X importtime`` entries after :data:`START_MARKER`: the handler's whole import."""
    return sum(cumulative for _, cumulative, outermost, _ in _handler_entries(stderr) if outermost)


def package_of(module: str) -> str:
    """The name a module's import time is charged to: its top-level package, ``strata``'s subpackage."""
    top, _, rest = module.partition(".")
    return f"strata.{rest.partition('.')[0]}" if top == "strata" and rest else top


def self_us_by_package(stderr: str) -> dict[str, int]:
    """Where the handler's import time went: self time summed per :func:`package_of` the module."""
    totals: dict[str, int] = {}
    for self_us, _, _, module in _handler_entries(stderr):
        package = package_of(module)
        totals[package] = totals.get(package, 0) + self_us
    return totals


def run_import(tree: LambdaTree, modules: Sequence[str], *, cwd: Path) -> ImportRun:
    """Import ``modules`` in a fresh ``python -S -X importtime`` process in the Lambda-like tree."""
    command = [sys.executable, "-S", "-X", "importtime", "-c", import_script(modules)]
    cpu_before = _children_cpu_s()
    began = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=lambda_environment(tree), cwd=cwd, check=False)
    wall_s = time.perf_counter() - began
    cpu_s = _children_cpu_s() - cpu_before
    if result.returncode != 0:
        raise RuntimeError(f"importing {', '.join(modules)} failed:\n{result.stderr[-4000:]}")
    return ImportRun(
        wall_s=wall_s,
        cpu_s=cpu_s,
        handler_us=handler_cumulative_us(result.stderr),
        modules=frozenset(line for line in result.stdout.splitlines() if line),
        self_us_by_package=self_us_by_package(result.stderr),
    )


def _children_cpu_s() -> float:
    # Runs are sequential, so the delta around one subprocess.run is that process's CPU time.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bare_start(tree: LambdaTree, *, cwd: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``python -S -c pass`` in the same environment: the interpreter's own start."""
    cpu_before = _children_cpu_s()
    began = time.perf_counter()
    subprocess.run([sys.executable, "-S", "-c", "pass"], env=lambda_environment(tree), cwd=cwd, check=True)
    return time.perf_counter() - began, _children_cpu_s() - cpu_before


def imported_packages(modules: frozenset[str]) -> frozenset[str]:
    """Distributions a process imported: top-level names outside the stdlib, plus ``strata``'s subpackages.

    Private top-level modules (``_cffi_backend``, ``_sysconfigdata_…``) are left out: a public
    package imported them and is counted itself.
    """
    names: set[str] = set()
    for module in modules:
        top, _, rest = module.partition(".")
        if top.startswith("_") or top in sys.stdlib_module_names:
            continue
        names.add(top)
        if top == "strata" and rest:
            names.add(f"strata.{rest.partition('.')[0]}")
    return frozenset(names)


@dataclass(frozen=True, slots=True)
class ImportBudget:
    """``bench/cold_start_budget.toml``: what a handler may import at cold start, each with its reason."""

    forbidden: Mapping[str, str]
    """Never imported by any handler, with the reason."""
    allowed: Mapping[str, Mapping[str, str]]
    """Per handler (``[common]`` merged in): package → why its import is needed at cold start."""
    handler_forbidden: Mapping[str, Mapping[str, str]]
    """Per handler: packages forbidden to that handler only, with the reason."""

    @classmethod
    def load(cls, path: Path = BUDGET_FILE) -> ImportBudget:
        document = tomllib.loads(path.read_text())
        handlers = document["handlers"]
        common = document["common"]["packages"]
        return cls(
            forbidden=document["forbidden"],
            allowed={name: {**common, **spec.get("packages", {})} for name, spec in handlers.items()},
            handler_forbidden={name: spec.get("forbidden", {}) for name, spec in handlers.items()},
        )

    def violations(self, handler: str, packages: frozenset[str]) -> list[str]:
        """What ``handler`` imported against its budget, each as a sentence saying what to do."""
        forbidden = {**self.forbidden, **self.handler_forbidden[handler]}
        allowed = self.allowed[handler]
        problems = []
        for package in sorted(packages):
            if package in forbidden:
                problems.append(
                    f"{handler} imports {package}, which it must not ({forbidden[package]}); import it lazily "
                    "where it is used, or move that code out of the handler's import path"
                )
            elif package not in allowed:
                problems.append(
                    f"{handler} now imports {package} at cold start: record it under "
                    f'[handlers.{handler}.packages] of {BUDGET_FILE.name} as "{package}" = "<why the handler '
                    'needs it before its first request>", or import it lazily where it is used'
                )
        return problems


LAMBDA_UNZIPPED_LIMIT_BYTES = 262_144_000
"""250 MB: a function's code and all its layers, unzipped (Lambda quotas)."""


def unzipped_bytes(folder: Path) -> int:
    """What an asset unzips to: the size of every regular file under ``folder``."""
    return sum(path.lstat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def measure_layer(runs: int, *, project_root: Path = REPO_ROOT) -> None:
    """Print the arm64 / 3.12 layer's install time (real pip, the deployed command) and unzipped sizes."""
    seconds: list[float] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as scratch:
            layer, code = Path(scratch) / "layer", Path(scratch) / "code"
            began = time.perf_counter()
            LayerBundler(project_root=project_root, architecture="arm64", python_version="3.12").try_bundle(str(layer))
            seconds.append(time.perf_counter() - began)
            SourceTreeBundler(source=project_root / "functions").try_bundle(str(code))
            site = layer / "python"
            sizes = {
                child.name: unzipped_bytes(child) if child.is_dir() else child.lstat().st_size
                for child in site.iterdir()
            }
            layer_bytes, code_bytes = unzipped_bytes(layer), unzipped_bytes(code)
    heaviest = sorted(sizes.items(), key=lambda item: item[1], reverse=True)[:10]
    print(f"layer arm64/3.12 install: median {median(seconds):.1f} s [{', '.join(f'{s:.1f}' for s in seconds)}]")
    print(
        f"unzipped: layer {layer_bytes / 1e6:.1f} MB + functions {code_bytes / 1e6:.2f} MB = "
        f"{(layer_bytes + code_bytes) / 1e6:.1f} MB of {LAMBDA_UNZIPPED_LIMIT_BYTES / 1e6:.1f} MB"
    )
    print("heaviest (MB): " + ", ".join(f"{name} {size / 1e6:.1f}" for name, size in heaviest))


def _format_ms(values: Sequence[float]) -> str:
    return ", ".join(f"{value * 1000:.0f}" for value in values)


def _handler_report(handler: Handler, runs: Sequence[ImportRun]) -> str:
    imports = [run.handler_us / 1e6 for run in runs]
    budget = "" if handler.budget_ms is None else f"  budget {handler.budget_ms:.0f} ms"
    if handler.budget_ms is not None:
        budget += ": within" if median(imports) * 1000 <= handler.budget_ms else ": OVER"
    walls, cpus = [run.wall_s for run in runs], [run.cpu_s for run in runs]
    packages = {package for run in runs for package in run.self_us_by_package}
    charged = {package: median([run.self_us_by_package.get(package, 0) / 1e6 for run in runs]) for package in packages}
    heaviest = sorted(charged.items(), key=lambda item: item[1], reverse=True)[:8]
    return (
        f"{handler.name:<11} import       {median(imports) * 1000:6.0f} ms [{_format_ms(imports)}]{budget}\n"
        f"{'':<11} process wall {median(walls) * 1000:6.0f} ms [{_format_ms(walls)}]\n"
        f"{'':<11} process cpu  {median(cpus) * 1000:6.0f} ms [{_format_ms(cpus)}]\n"
        f"{'':<11} self time by package (median ms): "
        + ", ".join(f"{package} {seconds * 1000:.0f}" for package, seconds in heaviest)
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the Lambda-like tree here (reused if built)")
    parser.add_argument("--layer-runs", type=int, default=0, help="also install the arm64 layer this many times")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        print(f"machine: {machine()}")
        print("baseline: python -S -c pass, same environment; import: -X importtime cumulative of the handler")
        if args.layer_runs:
            measure_layer(args.layer_runs)
        tree = lambda_tree_under(workdir / "lambda")
        if args.runs > 0 and not (tree.layer / "python").is_dir():
            began = time.perf_counter()
            tree = build_lambda_tree(workdir / "lambda")
            print(f"Lambda-like tree built in {time.perf_counter() - began:.1f} s under {workdir / 'lambda'}")
        for mode in ("source", "bytecode") if args.runs > 0 else ():
            if mode == "source":  # a reused tree may hold the bytecode of an earlier run
                for cache in list((workdir / "lambda").rglob("__pycache__")):
                    shutil.rmtree(cache)
            else:
                compileall.compile_dir(str(workdir / "lambda"), quiet=2, workers=1)
            print(f"\n[{mode}]")
            # Interleaved: each round runs the baseline and every handler once, so load on the machine hits all alike.
            baseline: list[tuple[float, float]] = []
            runs: dict[str, list[ImportRun]] = {handler.name: [] for handler in HANDLERS}
            for _ in range(args.runs):
                baseline.append(bare_start(tree, cwd=workdir))
                for handler in HANDLERS:
                    runs[handler.name].append(run_import(tree, handler.modules, cwd=workdir))
            walls, cpus = [wall for wall, _ in baseline], [cpu for _, cpu in baseline]
            print(f"{'baseline':<11} process wall {median(walls) * 1000:6.0f} ms [{_format_ms(walls)}]")
            print(f"{'':<11} process cpu  {median(cpus) * 1000:6.0f} ms [{_format_ms(cpus)}]")
            for handler in HANDLERS:
                print(_handler_report(handler, runs[handler.name]))


if __name__ == "__main__":
    main()
