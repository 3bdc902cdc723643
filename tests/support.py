"""What the test levels share."""

from __future__ import annotations

from pathlib import Path

from strata_local.env_file import read_env_file
from strata_local.harness import RunningStack, free_port, start_stack, wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASET = REPO_ROOT.parent / "shared" / "datasets" / "wiki-qa"

__all__ = ("DATASET", "REPO_ROOT", "RunningStack", "free_port", "read_env_file", "start_stack", "wait_until")
