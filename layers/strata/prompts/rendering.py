"""Prompt templates in Jinja2's sandbox: checked when a version is created, rendered per request.

Templates are written by tenants, so they run in ``SandboxedEnvironment``: no attribute whose name
starts with '_', no unsafe callables, ``range`` bounded. The sandbox does not bound every resource,
so this environment also intercepts ``*``, ``**`` and ``%`` (which Jinja would otherwise fold at
compile time, e.g. ``{{ 9 ** 9 ** 9 }}`` would hang the create call) and caps the rendered size.
Filters called with huge constant arguments (``'x'|center(10**9)``) are still evaluated when the
template compiles; the function's memory and time limits are what bound those.

Every declared variable is passed (its value, its default, or "" for an optional one), so
``StrictUndefined`` only fires for names the template sets up itself and misuses.
"""

from __future__ import annotations

import operator as operators
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from strata.prompts.types import (
    MAX_VARIABLE_VALUE_BYTES,
    InvalidPromptError,
    PromptRenderError,
    PromptSecurityError,
    PromptVariable,
    PromptVariableError,
    PromptVersion,
    variable_value_too_long,
)

MAX_RENDERED_CHARS = 256 * 1024
MAX_POWER_BITS = 4096  # of an integer ``a ** b``
COMPILED_CACHE_SIZE = 1024

# Nodes that need a template loader, which a prompt never has: a prompt is one template.
_LOADER_NODES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


class _PromptEnvironment(SandboxedEnvironment):
    """The sandbox, with the operators that can build huge values checked before they run."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "%" and isinstance(left, str):
            raise SecurityError("'%' string formatting is not available in prompts")
        if operator == "*":
            for sequence, count in ((left, right), (right, left)):
                repeats = isinstance(sequence, str | list | tuple) and isinstance(count, int)
                if repeats and len(sequence) * count > MAX_RENDERED_CHARS:
                    raise SecurityError(f"repeating a value {count} times makes it too long")
        integers = isinstance(left, int) and isinstance(right, int)
        if operator == "**" and integers and right > 0 and max(1, abs(left).bit_length()) * right > MAX_POWER_BITS:
            raise SecurityError(f"{left} ** {right} is too large")
        return {"*": operators.mul, "**": operators.pow, "%": operators.mod}[operator](left, right)


# One environment for every tenant: templates cannot change it (no loader, no extensions).
ENVIRONMENT = _PromptEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


def check_template(template: str, variables: Sequence[PromptVariable]) -> None:
    """Refuse a template that would fail for every request: bad syntax, a loader tag, a private
    attribute, a variable it uses but does not declare, or one it declares but never uses."""
    try:
        _check_template(template, variables)
    except (SyntaxError, RecursionError):  # Python's limits on the parser and the generated code
        raise InvalidPromptError("is nested too deeply", param="template") from None


def _check_template(template: str, variables: Sequence[PromptVariable]) -> None:
    try:
        parsed = ENVIRONMENT.parse(template)
    except TemplateSyntaxError as error:
        raise InvalidPromptError(f"line {error.lineno}: {error.message}", param="template") from None
    for node in parsed.find_all(_LOADER_NODES):
        tag = type(node).__name__.lower().replace("fromimport", "from ... import")
        raise InvalidPromptError(
            f"line {node.lineno}: '{tag}' is not available: a prompt is one template", param="template"
        )
    for node in parsed.find_all((nodes.Getattr, nodes.Getitem)):
        attribute = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        if isinstance(attribute, str) and attribute.startswith("_"):
            raise InvalidPromptError(
                f"line {node.lineno}: {attribute!r} is not accessible: the sandbox refuses names starting with '_'",
                param="template",
            )
    try:
        # Both run Jinja's code generator, which finds unknown filters and tests.
        used = meta.find_undeclared_variables(parsed) - ENVIRONMENT.globals.keys()
        ENVIRONMENT.compile(parsed)
    except TemplateSyntaxError as error:
        raise InvalidPromptError(f"line {error.lineno}: {error.message}", param="template") from None
    declared = {variable.name for variable in variables}
    if undeclared := sorted(used - declared):
        raise InvalidPromptError(
            f"uses {_names(undeclared)} but does not declare {'it' if len(undeclared) == 1 else 'them'} in 'variables'",
            param="template",
        )
    if unused := sorted({variable.name for variable in variables} - used):
        raise InvalidPromptError(
            f"{_names(unused)} {'is' if len(unused) == 1 else 'are'} never used", param="variables"
        )


def render_prompt(prompt: PromptVersion, variables: Mapping[str, str]) -> str:
    """The version's template rendered with ``variables`` (declared names only, string values).

    Examples
    --------
    >>> render_prompt(prompt, {"product": "Strata"})  # doctest: +SKIP
    'You answer questions about Strata.'
    """
    values = _values(prompt, variables)
    template = _compiled(prompt.tenant, prompt.name, prompt.version, prompt.template)
    where = f"prompt {prompt.name!r} version {prompt.version}"
    chunks: list[str] = []
    size = 0
    try:
        for chunk in template.generate(values):
            size += len(chunk)
            if size > MAX_RENDERED_CHARS:
                raise PromptRenderError(f"{where} renders to more than {MAX_RENDERED_CHARS} characters")
            chunks.append(chunk)
    except PromptRenderError:
        raise
    except SecurityError as error:
        raise PromptSecurityError(f"{where} was stopped by the sandbox: {error}") from None
    except Exception as error:  # the template's own fault, whatever it is: 1/0, a bad filter argument
        raise PromptRenderError(f"{where} failed to render: {type(error).__name__}: {error}") from None
    return "".join(chunks)


def _values(prompt: PromptVersion, passed: Mapping[str, str]) -> dict[str, str]:
    declared = {variable.name: variable for variable in prompt.variables}
    for name, value in passed.items():
        if name not in declared:
            known = f"its variables are {_names(sorted(declared))}" if declared else "it declares no variables"
            raise PromptVariableError(
                f"prompt {prompt.name!r} version {prompt.version} has no variable {name!r}: {known}", variable=name
            )
        if not isinstance(value, str):
            raise PromptVariableError(
                f"variable {name!r} must be a string, not {type(value).__name__}", variable=str(name)
            )
        if (size := variable_value_too_long(value)) is not None:
            raise PromptVariableError(
                f"variable {name!r} is {size} bytes; at most {MAX_VARIABLE_VALUE_BYTES} (8 KiB) are allowed",
                variable=name,
            )
    values: dict[str, str] = {}
    for name, variable in declared.items():
        if name in passed:
            values[name] = passed[name]
        elif variable.default is not None:
            values[name] = variable.default
        elif variable.required:
            raise PromptVariableError(
                f"prompt {prompt.name!r} version {prompt.version} needs variable {name!r}", variable=name
            )
        else:
            values[name] = ""
    return values


@lru_cache(maxsize=COMPILED_CACHE_SIZE)
def _compiled(tenant: str, name: str, version: int, template: str) -> Template:
    """Versions are immutable, so each is compiled once per process. The template text is part of
    the key: a deleted name can be created again, and its version 1 is then another template."""
    del tenant, name, version  # the key only
    try:
        return ENVIRONMENT.from_string(template)
    except TemplateSyntaxError as error:  # a version stored before templates were checked
        raise PromptRenderError(f"the template does not compile: line {error.lineno}: {error.message}") from None


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)
