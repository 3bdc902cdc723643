"""Prompt assembly."""

from strata.prompts.assembler import AssembledPrompt, assemble_prompt

__all__ = ("AssembledPrompt", "assemble_prompt")
