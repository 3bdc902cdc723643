"""Local (Docker-free) bundlers for the Lambda layer and the function code.

CDK calls :meth:`try_bundle` with an empty output directory; each bundler fills it and returns
``True``, or raises :class:`BundlingError` with the reason. Neither ever hands over to Docker: the
Docker image named in ``BundlingOptions`` is there only because CDK requires one.

Synthesizing with the context ``aws:cdk:bundling-stacks = []`` skips bundling entirely (the tests
do this, so they never run pip).
"""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path

import jsii
from aws_cdk import ILocalBundling

Runner = Callable[[Sequence[str]], None]

# Lambda runs Python 3.12 on Amazon Linux 2023 (glibc 2.34): any manylinux wheel up to 2_34 fits.
_MANYLINUX = ("manylinux_2_34", "manylinux_2_28", "manylinux2014")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", "tests")


class BundlingError(RuntimeError):
    """A Lambda asset could not be built locally."""


def run_checked(command: Sequence[str]) -> None:
    """Run ``command``; raise :class:`BundlingError` with its output when it fails."""
    result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BundlingError(
            f"{' '.join(command[:4])} ... failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


def project_requirements(pyproject: Path, *, exclude: Sequence[str] = ()) -> list[str]:
    """The ``[project].dependencies`` of ``pyproject``, minus those whose name is in ``exclude``."""
    dependencies: list[str] = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    excluded = {name.lower() for name in exclude}
    return [dep for dep in dependencies if _requirement_name(dep) not in excluded]


def python_version_of(interpreter: str) -> str | None:
    """``"3.12"`` for a Python 3.12 interpreter; ``None`` when it does not run (e.g. a pyenv shim of no version)."""
    try:
        result = subprocess.run(
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def find_python(version: str) -> str | None:
    """An interpreter of ``version`` on this machine (this one, or ``python<version>`` on PATH), else ``None``."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        return sys.executable
    candidate = shutil.which(f"python{version}")
    if candidate is not None and python_version_of(candidate) == version:
        return candidate
    return None


def _requirement_name(requirement: str) -> str:
    name = requirement
    for separator in ("[", "<", ">", "=", "!", "~", ";", " "):
        name = name.split(separator, 1)[0]
    return name.strip().lower()


@jsii.implements(ILocalBundling)
class LayerBundler:
    """Builds the shared layer: ``python/strata`` plus the project's dependencies.

    Parameters
    ----------
    project_root
        The repository root (``pyproject.toml`` and ``layers/strata`` live there).
    architecture
        ``"arm64"`` or ``"x86_64"``: the Linux platform pip downloads wheels for.
    python_version
        The Lambda runtime's Python version, e.g. ``"3.12"``.
    exclude_requirements
        Dependencies left out of the layer. Default ``("boto3",)``: the Lambda runtime ships boto3,
        and leaving out botocore's data keeps the layer well under the 250 MB unzipped limit.
    runner
        Runs the pip command (injected by tests; default :func:`run_checked`).
    bytecode_python
        An interpreter of ``python_version`` (see :func:`find_python`) that compiles the layer to
        bytecode after the install. Lambda's ``/opt`` is read-only, so a layer without bytecode
        is compiled from source at every cold start: about 3x the handlers' import time
        (``python -m bench.cold_start``). ``unchecked-hash`` pycs, because the asset's zip gives
        every file one fixed date, which timestamp pycs would not match.
        Default ``None``: no bytecode (pip's own would be this interpreter's, which 3.12 ignores).
    """

    def __init__(
        self,
        *,
        project_root: Path,
        architecture: str,
        python_version: str,
        exclude_requirements: Sequence[str] = ("boto3",),
        runner: Runner = run_checked,
        bytecode_python: str | None = None,
    ) -> None:
        self._root = project_root
        self._machine = {"arm64": "aarch64", "x86_64": "x86_64"}[architecture]
        self._python_version = python_version
        self._exclude = tuple(exclude_requirements)
        self._runner = runner
        self._bytecode_python = bytecode_python

    def pip_command(self, target: Path) -> list[str]:
        """The pip invocation that installs the layer's dependencies into ``target``."""
        platforms = [arg for tag in _MANYLINUX for arg in ("--platform", f"{tag}_{self._machine}")]
        requirements = project_requirements(self._root / "pyproject.toml", exclude=self._exclude)
        return [
            sys.executable, "-m", "pip", "install",
            "--target", str(target),
            *platforms,
            "--implementation", "cp",
            "--python-version", self._python_version,
            "--only-binary=:all:",
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
            *requirements,
        ]  # fmt: skip

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, *, image: object = None, **_options: object) -> bool:
        # jsii passes BundlingOptions as keywords; only the output directory matters here.
        target = Path(output_dir) / "python"
        target.mkdir(parents=True, exist_ok=True)
        # The interpreter is checked before pip runs, not after a minute of downloads.
        compile_command = self.compile_command(target) if self._bytecode_python is not None else None
        self._runner(self.pip_command(target))
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(self._root / "layers" / "strata", target / "strata", ignore=ignore)
        if compile_command is not None:
            self._runner(compile_command)
        return True

    def compile_command(self, target: Path) -> list[str]:
        """The ``compileall`` run that writes the layer's bytecode; fails unless the interpreter matches."""
        if self._bytecode_python is None:
            raise BundlingError("no bytecode interpreter was given")
        found = python_version_of(self._bytecode_python)
        if found != self._python_version:
            raise BundlingError(
                f"{self._bytecode_python} is Python {found}: its bytecode would not load on the "
                f"{self._python_version} runtime"
            )
        # Packages' own test suites are never imported: their bytecode would only take space.
        package_tests = f"^{re.escape(str(target))}/.+/tests/"
        return [
            self._bytecode_python, "-m", "compileall", "-q", "-j", "0",
            "--invalidation-mode", "unchecked-hash",
            "-x", package_tests,
            str(target),
        ]  # fmt: skip


@jsii.implements(ILocalBundling)
class SourceTreeBundler:
    """Copies a source folder (e.g. ``functions/``) into the asset under its own name.

    The handlers are imported as ``functions.<name>.app``, so the folder keeps its name inside the
    asset. Shell scripts (the Lambda Web Adapter's ``run.sh``) are made executable.

    Parameters
    ----------
    source
        The folder to copy (also the asset's source path).
    """

    def __init__(self, *, source: Path) -> None:
        self._source = source
        self._folder = source.name

    @jsii.member(jsii_name="tryBundle")
    def try_bundle(self, output_dir: str, *, image: object = None, **_options: object) -> bool:
        # jsii passes BundlingOptions as keywords; only the output directory matters here.
        if not self._source.is_dir():
            raise BundlingError(f"{self._source} does not exist")
        destination = Path(output_dir) / self._folder
        shutil.copytree(self._source, destination, ignore=_IGNORED, dirs_exist_ok=True)
        for script in destination.rglob("*.sh"):
            mode = script.stat().st_mode
            script.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return True
