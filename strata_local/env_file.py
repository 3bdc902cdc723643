"""``.strata/local.env``: what a shell, boto3 or the openai SDK needs to use the local stack."""

from __future__ import annotations

import os
from pathlib import Path

from dotenv import dotenv_values


def read_env_file(path: Path) -> dict[str, str]:
    return {k: v for k, v in dotenv_values(path).items() if v is not None} if path.exists() else {}


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    tmp.chmod(0o600)  # it holds the API key
    tmp.replace(path)


def load_env_file(path: Path) -> None:
    """Fill the environment from the file without overriding what is already set."""
    for key, value in read_env_file(path).items():
        os.environ.setdefault(key, value)
