"""One parser per file format behind a registry; :mod:`strata.ingest.parsing` is the facade callers use."""

from strata.ingest.parsers.base import HeadingOutline, Parser
from strata.ingest.parsers.charset import decode_text
from strata.ingest.parsers.registry import DEFAULT_REGISTRY, ParserRegistry, default_parsers
from strata.ingest.parsers.types import Page, ParsedDocument, Section

__all__ = (
    "DEFAULT_REGISTRY",
    "HeadingOutline",
    "Page",
    "ParsedDocument",
    "Parser",
    "ParserRegistry",
    "Section",
    "decode_text",
    "default_parsers",
)
