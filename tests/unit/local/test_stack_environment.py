"""What the local stack hands its functions and clients when the chat model may scale to zero."""

from __future__ import annotations

from pathlib import Path

from strata.config import Settings
from strata_local.stack import LocalStack, LocalStackConfig


def test_a_waking_local_model_tells_callers_to_come_back_when_its_wake_ends(tmp_path: Path) -> None:
    always_on = LocalStack(LocalStackConfig(state_dir=tmp_path))._environment()
    sleepy = LocalStack(LocalStackConfig(state_dir=tmp_path, scale_to_zero_after_s=30, wake_s=5))._environment()

    assert "STRATA_MODEL_WAKE_RETRY_AFTER_S" not in always_on
    assert (
        Settings(**{"model_wake_retry_after_s": sleepy["STRATA_MODEL_WAKE_RETRY_AFTER_S"]}).model_wake_retry_after_s
        == 5
    )
