"""JSON answers: the instruction that asks for one, the check of what came back (``jsonschema``),
and the message that asks the model to repair it.

A model's JSON often comes wrapped — in a Markdown code fence, or after a sentence of prose; the
check takes the outermost object or array out of such a wrapper, so only JSON that is really
malformed or does not match the schema costs a repair round.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

MAX_ERRORS = 5  # reported to the model and the caller; more only repeat the same fault
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)\n?\s*```", re.DOTALL)


class JsonAnswerError(Exception):
    """The model's answer was not valid JSON for the requested format, twice (once repaired)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(
            "The model's answer did not match the requested response_format after one repair attempt: "
            + "; ".join(errors)
        )
        self.errors = errors


@dataclass(frozen=True, slots=True)
class JsonVerdict:
    text: str  # the JSON as sent to the client (unwrapped from a fence or prose)
    errors: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors


def check_json_schema(schema: dict[str, Any]) -> None:
    """Raise ``ValueError`` when ``schema`` is not a valid JSON Schema (for the request's 400)."""
    from jsonschema.exceptions import SchemaError

    try:
        _validator(json.dumps(schema, sort_keys=True))
    except SchemaError as error:
        raise ValueError(f"not a valid JSON Schema: {error.message}") from None


def json_instructions(schema: dict[str, Any]) -> str:
    """What the system prompt adds when the answer must be JSON."""
    if schema == {"type": "object"}:
        return "Reply with one JSON object and nothing else: no prose, no code fence."
    return (
        "Reply with one JSON value that matches this JSON Schema, and nothing else: no prose, no code fence.\n"
        f"Schema: {json.dumps(schema, separators=(',', ':'))}"
    )


def repair_instructions(errors: list[str]) -> str:
    """The user message of the repair round, after the model's invalid answer."""
    listed = "\n".join(f"- {error}" for error in errors)
    return f"That reply is not valid:\n{listed}\nReply again with only the corrected JSON."


def check_json(answer: str, schema: dict[str, Any]) -> JsonVerdict:
    text = _unwrap(answer)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return JsonVerdict(text, [f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"])
    found = sorted(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value), key=lambda e: list(e.path))
    errors = [f"{_where(error.absolute_path)}: {error.message}" for error in found[:MAX_ERRORS]]
    return JsonVerdict(text, errors)


def _unwrap(answer: str) -> str:
    fenced = _FENCE.search(answer)
    if fenced:
        return fenced.group(1).strip()
    text = answer.strip()
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts or min(starts) == 0:
        return text
    start = min(starts)
    end = max(text.rfind("}"), text.rfind("]"))
    return text[start : end + 1] if end > start else text


def _where(path: Any) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


@lru_cache(maxsize=256)
def _validator(schema_text: str) -> Validator:
    # jsonschema is imported on the first JSON request, not at cold start.
    from jsonschema import validators

    schema = json.loads(schema_text)
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)
