"""Validation of answers as they stream (stream transformers): citations, loops, personal data,
JSON output, and the confidence score."""

from strata.validation.base import StreamValidator, outcome_of, validated
from strata.validation.citations import Citation, CitationCheck, build_citations, referenced_numbers
from strata.validation.confidence import answer_confidence
from strata.validation.json_output import (
    JsonAnswerError,
    JsonVerdict,
    check_json,
    check_json_schema,
    json_instructions,
    repair_instructions,
)
from strata.validation.pii import PiiRedactor, redact
from strata.validation.repetition import LoopGuard

__all__ = (
    "Citation",
    "CitationCheck",
    "JsonAnswerError",
    "JsonVerdict",
    "LoopGuard",
    "PiiRedactor",
    "StreamValidator",
    "answer_confidence",
    "build_citations",
    "check_json",
    "check_json_schema",
    "json_instructions",
    "outcome_of",
    "redact",
    "referenced_numbers",
    "repair_instructions",
    "validated",
)
