from __future__ import annotations

import pytest

from strata.validation import check_json, check_json_schema

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def test_a_matching_answer_is_valid_even_inside_a_code_fence_or_after_a_sentence() -> None:
    assert check_json('{"name": "Ada", "age": 36}', PERSON).valid
    fenced = check_json('Here you go:\n```json\n{"name": "Ada", "age": 36}\n```', PERSON)
    assert fenced.valid and fenced.text == '{"name": "Ada", "age": 36}'
    prose = check_json('Sure! {"name": "Ada", "age": 36} Hope this helps.', PERSON)
    assert prose.valid and prose.text == '{"name": "Ada", "age": 36}'


def test_the_errors_say_where_and_what() -> None:
    verdict = check_json('{"name": "Ada", "age": -1, "extra": true}', PERSON)
    assert not verdict.valid
    assert any(error.startswith("$.age:") and "minimum" in error for error in verdict.errors)
    assert any("extra" in error for error in verdict.errors)
    broken = check_json('{"name": "Ada", "age": ', PERSON)
    assert broken.errors and broken.errors[0].startswith("not valid JSON")


def test_json_object_accepts_any_object_and_nothing_else() -> None:
    assert check_json('{"a": [1, 2]}', {"type": "object"}).valid
    assert not check_json("[1, 2]", {"type": "object"}).valid
    assert not check_json("kangaroos", {"type": "object"}).valid


def test_an_invalid_schema_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        check_json_schema({"type": "objekt"})
