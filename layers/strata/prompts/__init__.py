"""Prompt assembly, and the tenants' named, versioned prompt templates."""

from strata.prompts.assembler import AssembledPrompt, assemble_prompt
from strata.prompts.store import PromptStore, build_prompt_store
from strata.prompts.types import (
    InvalidPromptError,
    PromptConflictError,
    PromptNotFoundError,
    PromptsError,
    PromptVersion,
    validate_description,
    validate_prompt_name,
    validate_template,
)

__all__ = (
    "AssembledPrompt",
    "InvalidPromptError",
    "PromptConflictError",
    "PromptNotFoundError",
    "PromptStore",
    "PromptVersion",
    "PromptsError",
    "assemble_prompt",
    "build_prompt_store",
    "validate_description",
    "validate_prompt_name",
    "validate_template",
)
