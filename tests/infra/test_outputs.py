"""`python -m infra_cdk.outputs` points the admin commands at a deployed stage from its outputs."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from aws_cdk.assertions import Template

from infra_cdk.outputs import main
from infra_cdk.stack import ADMIN_FIELDS, admin_output_name
from strata.config import Settings


def test_the_stack_outputs_every_value_the_admin_commands_read(template: Template) -> None:
    outputs = template.find_outputs("*")
    for field in ADMIN_FIELDS:
        assert field in Settings.model_fields, field
        assert admin_output_name(field) in outputs, field


def test_the_outputs_file_becomes_the_settings_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outputs = {admin_output_name(field): f"value of {field}" for field in ADMIN_FIELDS}
    outputs["SearchEndpoint"] = "https://search.example"
    path = tmp_path / "cdk-outputs.json"
    path.write_text(json.dumps({"strata-dev": outputs}))

    assert main([str(path), "--region", "eu-west-1"]) == 0

    exported = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in capsys.readouterr().out.splitlines()
    )
    settings = Settings(**{key.removeprefix("STRATA_").lower(): value for key, value in exported.items()})
    assert settings.keys_table == "value of keys_table"
    assert settings.key_pepper_secret == "value of key_pepper_secret"
    assert settings.opensearch_endpoint == "https://search.example"
    assert settings.aws_region == "eu-west-1"


def test_an_outputs_file_missing_a_value_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cdk-outputs.json"
    path.write_text(json.dumps({"strata-dev": {"ApiBaseUrl": "https://x"}}))

    assert main([str(path)]) == 2
    assert "has no output" in capsys.readouterr().err
