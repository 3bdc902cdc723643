"""The arrows run one way: local stack → functions → library ← infra (config only).

Read from the source with ``ast`` (nothing is imported), so a lazy import inside a function
counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _imports(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        modules: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
        found[str(path.relative_to(ROOT))] = modules
    return found


def _offenders(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{path} imports {module}"
        for path, modules in _imports(ROOT / folder).items()
        for module in modules
        if module.split(".")[0] in forbidden
    )


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        # What ships in the Lambda layer knows nothing of its callers.
        ("layers/strata", ("functions", "strata_local", "infra_cdk", "model_endpoint", "bench", "tests")),
        # The functions are called by the local stack, never the other way round.
        ("functions", ("strata_local", "infra_cdk", "bench", "tests")),
        ("model_endpoint", ("strata", "functions", "strata_local", "infra_cdk")),
    ],
)
def test_no_import_runs_against_the_arrows(folder: str, forbidden: tuple[str, ...]) -> None:
    assert _offenders(folder, forbidden) == []


def test_infra_reads_only_the_library_config() -> None:
    used = {
        module
        for modules in _imports(ROOT / "infra_cdk").values()
        for module in modules
        if module.split(".")[0] == "strata"
    }
    allowed = {
        "strata.config",
        # The chat page's config.json and content security policy, which the local gateway serves too.
        "strata.config.frontend",
        "strata.config.metrics",
        "strata.config.resources",
        "strata.config.routes",
        "strata.config.settings",
        # The model registry's document is configuration too: the stack grants what it names.
        "strata.inference.registry",
        # The chunk index's mapping and hybrid pipeline, defined once in the adapter: the search
        # bootstrap's custom resource hashes them, so that a changed definition redeploys it.
        "strata.retrieval.factory",
        "strata.retrieval.opensearch",
    }
    assert used <= allowed, used - allowed


def test_every_name_the_lazy_ingest_package_exports_is_its_modules_own() -> None:
    import importlib

    import strata.ingest as ingest

    for name, module in ingest._MODULE_OF.items():
        assert getattr(ingest, name) is getattr(importlib.import_module(module), name), name
