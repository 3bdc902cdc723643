"""Validation of answers as they stream (stream transformers), citations included."""

from strata.validation.base import StreamValidator, outcome_of, validated
from strata.validation.citations import Citation, CitationCheck, build_citations, referenced_numbers

__all__ = (
    "Citation",
    "CitationCheck",
    "StreamValidator",
    "build_citations",
    "outcome_of",
    "referenced_numbers",
    "validated",
)
