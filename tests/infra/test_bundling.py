"""The local bundlers build the layer and function assets without Docker (pip is faked here)."""

from __future__ import annotations

import stat
from collections.abc import Sequence
from pathlib import Path

import pytest

from infra_cdk.bundling import BundlingError, LayerBundler, SourceTreeBundler, project_requirements

PYPROJECT = """\
[project]
name = "demo"
dependencies = ["pydantic>=2.7", "boto3>=1.34", "uvicorn[standard]>=0.30", "numpy; python_version>='3.11'"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "layers" / "strata" / "config").mkdir(parents=True)
    (root / "layers" / "strata" / "__init__.py").write_text("")
    (root / "layers" / "strata" / "config" / "__init__.py").write_text("")
    (root / "layers" / "strata" / "__pycache__").mkdir()
    (root / "pyproject.toml").write_text(PYPROJECT)
    chat = root / "functions" / "chat"
    chat.mkdir(parents=True)
    (root / "functions" / "__init__.py").write_text("")
    (chat / "app.py").write_text("app = None\n")
    (chat / "run.sh").write_text("#!/bin/sh\nexec python -m uvicorn app:app\n")
    (chat / "run.sh").chmod(0o644)
    (chat / "__pycache__").mkdir()
    return root


class FakePip:
    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> None:
        self.commands.append(list(command))
        target = Path(command[command.index("--target") + 1])
        (target / "pydantic").mkdir(parents=True)


def test_requirements_come_from_pyproject_minus_excluded(project: Path) -> None:
    requirements = project_requirements(project / "pyproject.toml", exclude=("boto3",))

    assert requirements == ["pydantic>=2.7", "uvicorn[standard]>=0.30", "numpy; python_version>='3.11'"]


@pytest.mark.parametrize(("architecture", "machine"), [("arm64", "aarch64"), ("x86_64", "x86_64")])
def test_layer_installs_linux_wheels_for_the_lambda_runtime(
    project: Path, tmp_path: Path, architecture: str, machine: str
) -> None:
    pip = FakePip()
    bundler = LayerBundler(project_root=project, architecture=architecture, python_version="3.12", runner=pip)
    output = tmp_path / "out"

    assert bundler.try_bundle(str(output)) is True

    (command,) = pip.commands
    assert command[command.index("--target") + 1] == str(output / "python")
    assert f"manylinux2014_{machine}" in command
    assert command[command.index("--python-version") + 1] == "3.12"
    assert "--only-binary=:all:" in command
    assert "pydantic>=2.7" in command
    assert not [arg for arg in command if arg.startswith("boto3")]


def test_layer_ships_the_strata_package(project: Path, tmp_path: Path) -> None:
    bundler = LayerBundler(project_root=project, architecture="arm64", python_version="3.12", runner=FakePip())
    output = tmp_path / "out"

    bundler.try_bundle(str(output))

    assert (output / "python" / "strata" / "config" / "__init__.py").is_file()
    assert (output / "python" / "pydantic").is_dir()
    assert not (output / "python" / "strata" / "__pycache__").exists()


def test_layer_bundling_failure_names_the_command(project: Path, tmp_path: Path) -> None:
    def failing(command: Sequence[str]) -> None:
        raise BundlingError("pip install ... failed (1)")

    bundler = LayerBundler(project_root=project, architecture="arm64", python_version="3.12", runner=failing)

    with pytest.raises(BundlingError, match="pip install"):
        bundler.try_bundle(str(tmp_path / "out"))


def test_function_code_keeps_its_package_path_and_executable_scripts(project: Path, tmp_path: Path) -> None:
    output = tmp_path / "out"

    assert SourceTreeBundler(source=project / "functions").try_bundle(str(output)) is True

    run_sh = output / "functions" / "chat" / "run.sh"
    assert (output / "functions" / "chat" / "app.py").is_file()
    assert run_sh.stat().st_mode & stat.S_IXUSR
    assert not (output / "functions" / "chat" / "__pycache__").exists()


def test_function_code_from_a_missing_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(BundlingError, match="does not exist"):
        SourceTreeBundler(source=tmp_path / "functions").try_bundle(str(tmp_path / "out"))
