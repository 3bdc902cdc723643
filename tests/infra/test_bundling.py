"""The local bundlers build the layer and function assets without Docker.

Fast checks of the pip command's shape and of the copies; ``test_packaging.py`` runs pip for real.
"""

from __future__ import annotations

import stat
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from infra_cdk.bundling import (
    BundlingError,
    LayerBundler,
    SourceTreeBundler,
    find_python,
    project_requirements,
    python_version_of,
    run_checked,
)

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


def no_pip(command: Sequence[str]) -> None:
    """Stands in for pip where only the copy of the library is under test."""


def test_requirements_come_from_pyproject_minus_excluded(project: Path) -> None:
    requirements = project_requirements(project / "pyproject.toml", exclude=("boto3",))

    assert requirements == ["pydantic>=2.7", "uvicorn[standard]>=0.30", "numpy; python_version>='3.11'"]


@pytest.mark.parametrize(("architecture", "machine"), [("arm64", "aarch64"), ("x86_64", "x86_64")])
def test_pip_installs_linux_wheels_for_the_lambda_runtime(project: Path, architecture: str, machine: str) -> None:
    bundler = LayerBundler(project_root=project, architecture=architecture, python_version="3.12")
    target = project / "out" / "python"

    command = bundler.pip_command(target)

    assert command[1:4] == ["-m", "pip", "install"]
    assert command[command.index("--target") + 1] == str(target)
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms == [f"manylinux_2_34_{machine}", f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]
    assert command[command.index("--python-version") + 1] == "3.12"
    assert command[command.index("--implementation") + 1] == "cp"
    assert "--only-binary=:all:" in command  # never an sdist built for this machine's platform
    assert command[-3:] == ["pydantic>=2.7", "uvicorn[standard]>=0.30", "numpy; python_version>='3.11'"]


def test_layer_ships_the_strata_package_without_bytecode(project: Path, tmp_path: Path) -> None:
    bundler = LayerBundler(project_root=project, architecture="arm64", python_version="3.12", runner=no_pip)
    output = tmp_path / "out"

    assert bundler.try_bundle(str(output)) is True

    assert (output / "python" / "strata" / "config" / "__init__.py").is_file()
    assert not (output / "python" / "strata" / "__pycache__").exists()


def test_a_failing_command_raises_with_its_exit_status_and_output(tmp_path: Path) -> None:
    failing = [sys.executable, "-c", "import sys; print('partial'); sys.exit('ERROR: no wheel for you')"]

    with pytest.raises(BundlingError, match=r"failed \(1\)") as raised:
        run_checked(failing)

    assert "partial" in str(raised.value)
    assert "ERROR: no wheel for you" in str(raised.value)


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


def pip_skipped(command: Sequence[str]) -> None:
    """Runs every command but pip's: the bytecode step for real, on the copied library."""
    if list(command[1:3]) != ["-m", "pip"]:
        run_checked(command)


def test_layer_bytecode_is_written_by_the_runtimes_interpreter_as_unchecked_hash_pycs(
    project: Path, tmp_path: Path
) -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    (project / "layers" / "strata" / "tests").mkdir()
    (project / "layers" / "strata" / "tests" / "test_x.py").write_text("")
    bundler = LayerBundler(
        project_root=project,
        architecture="arm64",
        python_version=version,
        runner=pip_skipped,
        bytecode_python=sys.executable,
    )
    output = tmp_path / "out"

    bundler.try_bundle(str(output))

    (pyc,) = (output / "python" / "strata" / "config" / "__pycache__").glob("__init__.*.pyc")
    assert pyc.name == f"__init__.{sys.implementation.cache_tag}.pyc"
    # PEP 552 flags: bit 0 hash-based, bit 1 check_source; unchecked-hash is 0b01.
    assert int.from_bytes(pyc.read_bytes()[4:8], "little") == 0b01
    assert not list((output / "python" / "strata" / "tests").rglob("*.pyc"))


def test_bytecode_from_an_interpreter_of_another_version_is_refused(project: Path, tmp_path: Path) -> None:
    other = "3.12" if sys.version_info[:2] != (3, 12) else "3.11"
    commands: list[Sequence[str]] = []
    bundler = LayerBundler(
        project_root=project,
        architecture="arm64",
        python_version=other,
        runner=commands.append,
        bytecode_python=sys.executable,
    )

    with pytest.raises(BundlingError, match=rf"is Python {sys.version_info.major}\.{sys.version_info.minor}"):
        bundler.try_bundle(str(tmp_path / "out"))

    assert commands == []  # refused before pip downloads anything


def test_find_python_answers_only_an_interpreter_of_the_asked_version() -> None:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"

    assert find_python(version) == sys.executable
    assert find_python("2.1") is None
    assert python_version_of(sys.executable) == version
    assert python_version_of("/nonexistent/python") is None
