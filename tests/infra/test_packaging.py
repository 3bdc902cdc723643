"""Packaging without Docker, for real: pip installs the Lambda platform's wheels (no fake runner).

These tests reach the package registry (a warm pip cache makes them faster): about 20 s each for
the arm64 layer and for the Lambda-like tree of the import budgets on the 2-core machine.

- The layer for ``arm64`` / Python 3.12 holds the library and aarch64 manylinux binaries only,
  nothing Lambda must not load, and fits Lambda's 250 MB unzipped limit with the function code.
- A requirement with no wheel for the platform fails bundling with pip's own message.
- Each handler's import, in a fresh process laid out as Lambda lays it out, pulls in only what
  ``bench/cold_start_budget.toml`` records with a reason (the wall-clock figures are
  ``python -m bench.cold_start``'s; no timing is asserted here).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from bench.cold_start import (
    BUDGET_FILE,
    DEPLOYED_SETTINGS,
    HANDLERS,
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    START_MARKER,
    Handler,
    ImportBudget,
    LambdaTree,
    build_lambda_tree,
    handler_cumulative_us,
    imported_packages,
    lambda_environment,
    run_import,
    unzipped_bytes,
)
from bench.common import REPO_ROOT
from infra_cdk.bundling import BundlingError, LayerBundler, SourceTreeBundler
from infra_cdk.constructs.functions import PYTHON_VERSION
from strata.config.settings import ENV_PREFIX

# e_machine of the ELF header (offset 18, little-endian on both Lambda architectures).
EM_X86_64 = 62
EM_AARCH64 = 183
NEVER_IN_THE_LAYER = {
    "boto3": "the Lambda runtime ships it",
    "botocore": "the Lambda runtime ships it (with boto3)",
    "torch": "the model server's framework",
    "strata_local": "the local stack",
    "model_endpoint": "the local model server",
    "infra_cdk": "the CDK app",
    "tests": "the project's tests",
}


@pytest.fixture(scope="module")
def arm64_layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer asset exactly as ``cdk synth`` bundles it for the default architecture (real pip)."""
    output = tmp_path_factory.mktemp("layer-arm64")
    bundler = LayerBundler(project_root=REPO_ROOT, architecture="arm64", python_version=PYTHON_VERSION)
    assert bundler.try_bundle(str(output)) is True
    return output


@pytest.fixture(scope="module")
def function_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("functions")
    assert SourceTreeBundler(source=REPO_ROOT / "functions").try_bundle(str(output)) is True
    return output


def elf_machine(path: Path) -> int | None:
    """The ELF header's machine field of ``path``; ``None`` when it is no ELF file."""
    with path.open("rb") as file:
        header = file.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def shared_objects(folder: Path) -> Iterator[Path]:
    """``*.so`` and versioned ``*.so.N`` files (``numpy.libs/libopenblas….so.0``)."""
    for path in folder.rglob("*"):
        if path.is_file() and (path.suffix == ".so" or ".so." in path.name):
            yield path


# --- the layer, installed for real ---


def test_layer_holds_the_library_and_aarch64_wheels_for_python_312(arm64_layer: Path) -> None:
    site = arm64_layer / "python"
    (pydantic_core,) = (site / "pydantic_core").glob("_pydantic_core.*.so")

    assert (site / "strata" / "config" / "settings.py").is_file()
    assert (site / "strata" / "inference" / "tokenizers").is_dir()  # package data travels with the code
    assert "cpython-312-aarch64-linux-gnu" in pydantic_core.name
    assert elf_machine(pydantic_core) == EM_AARCH64
    machines = {path.relative_to(site).as_posix(): elf_machine(path) for path in shared_objects(site)}
    assert len(machines) > 10  # numpy, pydantic_core, tokenizers, cryptography, ... all compiled
    assert {name: machine for name, machine in machines.items() if machine != EM_AARCH64} == {}
    assert EM_X86_64 not in machines.values()


def test_layer_leaves_out_what_lambda_must_not_load(arm64_layer: Path) -> None:
    site = arm64_layer / "python"
    shipped = {name: why for name, why in NEVER_IN_THE_LAYER.items() if (site / name).exists()}

    assert shipped == {}
    assert not [path for path in (site / "strata").rglob("*") if path.name in {"__pycache__", "tests"}]
    assert not list(site.rglob("*.pyc"))  # bytecode of this interpreter would not match the 3.12 runtime


def test_layer_and_function_code_fit_lambdas_unzipped_limit(arm64_layer: Path, function_code: Path) -> None:
    layer, code = unzipped_bytes(arm64_layer), unzipped_bytes(function_code)

    assert layer + code <= LAMBDA_UNZIPPED_LIMIT_BYTES, (
        f"layer {layer / 1e6:.1f} MB + functions {code / 1e6:.1f} MB exceed Lambda's 250 MB unzipped limit"
    )


def test_a_requirement_without_a_wheel_for_the_platform_fails_with_pips_message(tmp_path: Path) -> None:
    # numpy 1.24 has no CPython 3.12 wheel: pip itself refuses, --only-binary forbids building from source.
    root = tmp_path / "repo"
    (root / "layers" / "strata").mkdir(parents=True)
    (root / "layers" / "strata" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text('[project]\nname = "demo"\ndependencies = ["numpy==1.24.4"]\n')
    bundler = LayerBundler(project_root=root, architecture="arm64", python_version="3.12")

    with pytest.raises(BundlingError, match="No matching distribution found for numpy==1.24.4") as raised:
        bundler.try_bundle(str(tmp_path / "out"))

    assert "pip install" in str(raised.value)
    assert not (tmp_path / "out" / "python" / "strata").exists()  # nothing half-built is handed to CDK


# --- cold-start import budgets ---


@pytest.fixture(scope="module")
def lambda_tree(tmp_path_factory: pytest.TempPathFactory) -> LambdaTree:
    """The layer and code bundled for *this* machine (so its binaries load), plus the runtime's boto3."""
    return build_lambda_tree(tmp_path_factory.mktemp("lambda"))


@pytest.fixture(scope="module")
def budget() -> ImportBudget:
    return ImportBudget.load()


@pytest.mark.parametrize("handler", HANDLERS, ids=[handler.name for handler in HANDLERS])
def test_handler_imports_only_what_its_budget_records(
    lambda_tree: LambdaTree, budget: ImportBudget, handler: Handler, tmp_path: Path
) -> None:
    run = run_import(lambda_tree, handler.modules, cwd=tmp_path)
    packages = imported_packages(run.modules)

    assert set(handler.modules) <= run.modules
    assert "strata" in packages and "pydantic" in packages  # the parse found the real imports
    violations = budget.violations(handler.name, packages)
    assert not violations, "\n".join(violations)


def test_imports_come_from_the_lambda_like_tree_not_the_venv(lambda_tree: LambdaTree, tmp_path: Path) -> None:
    # The venv has torch, moto and optional speed-ups the layer lacks; none of it may leak into the check.
    script = "import pydantic, strata, boto3; print(pydantic.__file__, strata.__file__, boto3.__file__)"
    result = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        env=lambda_environment(lambda_tree),
        cwd=tmp_path,
        check=True,
    )
    pydantic_file, strata_file, boto3_file = (Path(name) for name in result.stdout.split())

    assert pydantic_file.is_relative_to(lambda_tree.layer)
    assert strata_file.is_relative_to(lambda_tree.layer)
    assert boto3_file.is_relative_to(lambda_tree.runtime)


def test_a_new_heavy_import_fails_the_budget_with_what_to_record(budget: ImportBudget) -> None:
    packages = frozenset({"strata", "pydantic", "torch", "newlib", "numpy"})

    violations = budget.violations("authorizer", packages)

    assert len(violations) == 3
    newlib, numpy, torch = violations  # sorted by package
    assert "authorizer imports torch, which it must not" in torch
    assert f'[handlers.authorizer.packages] of {BUDGET_FILE.name} as "newlib"' in newlib
    assert "imports numpy, which it must not (the authorizer resolves a key" in numpy
    assert budget.violations("ingest", frozenset({"numpy"})) == []  # allowed where it is needed


def test_budget_names_a_reason_for_every_package() -> None:
    budget = ImportBudget.load()

    assert {handler.name for handler in HANDLERS} == set(budget.allowed)
    for table in (budget.forbidden, *budget.allowed.values(), *budget.handler_forbidden.values()):
        assert all(isinstance(reason, str) and len(reason) > 10 for reason in table.values())


def test_imported_packages_are_top_level_names_and_strata_subpackages() -> None:
    modules = frozenset({"json", "_cffi_backend", "jwt.api_jwk", "strata", "strata.auth.keys", "__main__"})

    assert imported_packages(modules) == {"jwt", "strata", "strata.auth"}


def test_handler_cumulative_counts_only_outermost_imports_after_the_marker() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 | encodings",
            START_MARKER,
            "import time:        50 |         50 |   pydantic_core",
            "import time:       200 |        250 | pydantic",
            "import time:        30 |         30 | jwt",
        ]
    )

    assert handler_cumulative_us(stderr) == 280


def test_deployed_settings_cover_every_strata_variable_the_functions_get(template: Template) -> None:
    functions = template.find_resources("AWS::Lambda::Function")
    names = {
        name
        for function in functions.values()
        for name in function["Properties"].get("Environment", {}).get("Variables", {})  # custom resources: none
        if name.startswith(ENV_PREFIX)
    }
    # JWT sign-in and the models registry are optional: set or not, they decide no import.
    optional = {"jwt_issuer", "jwt_audience", "jwt_tenant_claim", "models", "models_parameter"}
    fields = {name.removeprefix(ENV_PREFIX).lower() for name in names} - optional

    assert {"keys_table", "chat_endpoint", "vector_store"} <= fields  # the template was read
    missing = sorted(fields - set(DEPLOYED_SETTINGS))
    assert missing == [], f"add {missing} to bench.cold_start.DEPLOYED_SETTINGS: the handlers import with them"
