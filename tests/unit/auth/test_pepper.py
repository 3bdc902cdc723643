"""Where the pepper comes from: the setting itself, Secrets Manager (moto), or a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from strata.auth import AuthConfigurationError, build_key_store, load_pepper
from strata.config import Settings
from tests.unit.auth.support import create_auth_tables

SECRET_VALUE = "pepper-from-secrets-manager-0123456789"


@pytest.fixture
def secret() -> Iterator[str]:
    """A Secrets Manager secret holding the pepper, as the CDK app creates it (a plain string)."""
    with mock_aws():
        boto3.client("secretsmanager", region_name="us-east-1").create_secret(
            Name="strata/key-pepper", SecretString=SECRET_VALUE
        )
        yield "strata/key-pepper"


def test_the_pepper_setting_wins_over_a_secret_and_a_file(secret: str, tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("from-file")
    settings = Settings(key_pepper="from-setting", key_pepper_secret=secret, key_pepper_file=tmp_path / "pepper")

    assert load_pepper(settings) == "from-setting"


def test_the_secret_is_read_from_secrets_manager_and_wins_over_a_file(secret: str, tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("from-file")

    assert load_pepper(Settings(key_pepper_secret=secret, key_pepper_file=tmp_path / "pepper")) == SECRET_VALUE


def test_a_missing_secret_is_an_error_naming_it() -> None:
    with mock_aws(), pytest.raises(AuthConfigurationError, match="strata/absent"):
        load_pepper(Settings(key_pepper_secret="strata/absent"))


def test_the_file_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("from-file\n")

    assert load_pepper(Settings(key_pepper_file=tmp_path / "pepper")) == "from-file"


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigurationError, match="nowhere"):
        load_pepper(Settings(key_pepper_file=tmp_path / "nowhere"))


def test_an_empty_pepper_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pepper").write_text("\n")

    with pytest.raises(AuthConfigurationError, match="empty"):
        load_pepper(Settings(key_pepper_file=tmp_path / "pepper"))
    with pytest.raises(AuthConfigurationError, match="empty"):
        load_pepper(Settings(key_pepper=""))


def test_without_any_pepper_the_error_names_the_three_settings() -> None:
    with pytest.raises(AuthConfigurationError) as missing:
        # Explicit Nones: a STRATA_KEY_PEPPER in the shell running the tests must not count.
        load_pepper(Settings(key_pepper=None, key_pepper_secret=None, key_pepper_file=None))

    for name in ("STRATA_KEY_PEPPER", "STRATA_KEY_PEPPER_SECRET", "STRATA_KEY_PEPPER_FILE"):
        assert name in str(missing.value)


def test_the_key_store_hashes_with_the_pepper_from_secrets_manager(secret: str) -> None:
    create_auth_tables(boto3.client("dynamodb", region_name="us-east-1"))
    from_secret = build_key_store(Settings(key_pepper_secret=secret))
    issued = from_secret.create("acme")

    # The same pepper given directly resolves the key: the secret's value is what keyed the hash.
    assert build_key_store(Settings(key_pepper=SECRET_VALUE)).resolve(issued.secret).tenant == "acme"
