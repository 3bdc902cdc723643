"""``strata prompts ...`` against moto's DynamoDB, as an operator runs it."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from strata_local import cli
from strata_local.aws import create_tables

Strata = Callable[[str], tuple[int, str, str]]


@pytest.fixture
def strata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Strata]:
    """Runs a command line (after ``strata``); returns its exit status, stdout and stderr."""
    monkeypatch.delenv("STRATA_AWS_ENDPOINT_URL", raising=False)

    def run(command: str) -> tuple[int, str, str]:
        status = cli.main([*shlex.split(command), "--state-dir", str(tmp_path)])
        out, err = capsys.readouterr()
        return status, out, err

    with mock_aws():
        create_tables(boto3.client("dynamodb", region_name="us-east-1"))
        yield run


def test_create_label_roll_back_and_render_a_prompt(strata: Strata, tmp_path: Path) -> None:
    template = tmp_path / "support.j2"
    template.write_text("Help {{ customer }} with {{ product }}.\n")
    first = strata("prompts create support --tenant acme --template 'v1 for {{ customer }}' --variable customer")
    second = strata(
        f"prompts create support --tenant acme --file {template} --variable customer --variable product=Strata "
        "--label production"
    )

    assert first[0] == 0
    assert second[:2] == (0, "created prompt support version 2 for tenant acme (labels: production)\n")
    assert strata("prompts render support --tenant acme --var customer=Ann")[1] == "Help Ann with Strata.\n"

    status, out, _ = strata("prompts label support production 1 --tenant acme")
    assert status == 0 and "now points at version 1 (was version 2)" in out
    assert strata("prompts render support --tenant acme --var customer=Ann")[1] == "v1 for Ann\n"
    pinned = strata("prompts render support --tenant acme --version 2 --var customer=Bo --var 'product=the API'")
    assert pinned[1] == "Help Bo with the API.\n"

    versions = strata("prompts versions support --tenant acme")[1].splitlines()
    assert [line.split()[0] for line in versions] == ["v1", "v2"]
    assert "production" in versions[0] and "production" not in versions[1]
    shown = strata("prompts show support --tenant acme --label production")[1]
    assert "version 1" in shown and shown.endswith("---\nv1 for {{ customer }}\n")
    assert strata("prompts list --tenant acme")[1].split()[:2] == ["support", "v2"]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("create support --tenant acme --template '{{ who }}'", "'who'"),
        ("render support --tenant acme", "needs variable 'customer'"),
        ("render support --tenant acme --var customer=a --var x=1", "no variable 'x'"),
        ("label support production 7 --tenant acme", "version 7"),
        ("show support --tenant acme --label staging", "no label 'staging'"),
        ("show support --tenant globex", "no prompt 'support'"),
    ],
)
def test_errors_are_printed_and_exit_2(strata: Strata, command: str, message: str) -> None:
    strata("prompts create support --tenant acme --template 'Hi {{ customer }}' --variable customer")

    status, out, err = strata(f"prompts {command}")

    assert (status, out) == (2, "")
    assert err.startswith("error: ") and message in err


def test_a_missing_template_file_is_an_error(strata: Strata, tmp_path: Path) -> None:
    status, _, err = strata(f"prompts create p --tenant acme --file {tmp_path / 'nope.j2'}")

    assert status == 2 and err.startswith("error: cannot read")


def test_a_tenant_opts_out_of_personal_data_redaction_and_back(strata: Strata) -> None:
    from strata.auth import TenantStore

    tenants = TenantStore(boto3.resource("dynamodb", region_name="us-east-1").Table("strata-tenants"))
    status, out, _ = strata("tenants pii off --tenant acme")
    assert status == 0 and "redaction off" in out
    assert tenants.get("acme").redact_pii is False
    assert strata("tenants pii on --tenant acme")[0] == 0
    assert tenants.get("acme").redact_pii is True
    assert strata("tenants pii off --tenant 'not a tenant'")[0] == 2
