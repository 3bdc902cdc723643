"""The ``STRATA_*`` variable of a ``Settings`` field, for the functions' environments."""

from __future__ import annotations

from strata.config.settings import ENV_PREFIX, Settings


def setting_env(field: str) -> str:
    """The environment variable of a :class:`~strata.config.Settings` field; fails on unknown fields."""
    if field not in Settings.model_fields:
        raise KeyError(f"Settings has no field {field!r}; the Lambdas would ignore {ENV_PREFIX}{field.upper()}")
    return f"{ENV_PREFIX}{field.upper()}"
