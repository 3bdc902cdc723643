"""``.strata/local.env`` reads back the same in a shell (``set -a; . local.env``) and in Python."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from strata_local.env_file import read_env_file, write_env_file

VALUES = {
    "STRATA_API_URL": "http://127.0.0.1:8000/v1",
    "STRATA_API_KEY": "sk-strata-abc-DEF_123",
    "STRATA_CHAT_PARAMETERS": '{"repetition_penalty": 1.2}',
    "STRATA_VECTOR_STORE_PATH": "/home/me/my project/.strata/vectors.db",
}


def test_a_shell_and_python_read_back_every_value_as_written(tmp_path: Path) -> None:
    path = tmp_path / "local.env"
    write_env_file(path, VALUES)

    printed = subprocess.run(
        ["bash", "-c", f"set -a; . {path}; set +a; " + "; ".join(f'printf "%s\\0" "${k}"' for k in VALUES)],
        capture_output=True,
        text=True,
        check=True,
    )

    assert printed.stderr == ""
    assert printed.stdout.split("\0")[:-1] == list(VALUES.values())
    assert read_env_file(path) == VALUES


def test_a_value_neither_can_read_back_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot write"):
        write_env_file(tmp_path / "local.env", {"X": "it's"})
