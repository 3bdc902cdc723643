"""``.strata/local.env``: what a shell, boto3 or the openai SDK needs to use the local stack."""

from __future__ import annotations

import os
import re
from pathlib import Path

from dotenv import dotenv_values


def read_env_file(path: Path) -> dict[str, str]:
    return {k: v for k, v in dotenv_values(path).items() if v is not None} if path.exists() else {}


def write_env_file(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(f"{key}={_quoted(value)}\n" for key, value in values.items()))
    tmp.chmod(0o600)  # it holds the API key
    tmp.replace(path)


_PLAIN = re.compile(r"[A-Za-z0-9_./:@%+=,-]*")


def _quoted(value: str) -> str:
    """The value as a shell (``set -a; . local.env``) and python-dotenv both read it back: as is
    when it is plain, else in single quotes, which both take literally (a JSON object, a space)."""
    if _PLAIN.fullmatch(value):
        return value
    if "'" in value or "\n" in value:
        raise ValueError(f"cannot write {value!r} to an env file that a shell sources")
    return f"'{value}'"


def load_env_file(path: Path) -> None:
    """Fill the environment from the file without overriding what is already set."""
    for key, value in read_env_file(path).items():
        os.environ.setdefault(key, value)
