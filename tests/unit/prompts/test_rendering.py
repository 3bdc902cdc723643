"""Prompt templates in the sandbox: what a create accepts, and what a render gives or refuses."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from strata.prompts import (
    InvalidPromptError,
    PromptRenderError,
    PromptSecurityError,
    PromptVariable,
    PromptVariableError,
    PromptVersion,
    check_template,
    render_prompt,
)


def prompt(template: str, *variables: PromptVariable, version: int = 1) -> PromptVersion:
    check_template(template, variables)
    return PromptVersion(
        tenant="acme",
        name="support",
        version=version,
        template=template,
        variables=list(variables),
        created_at=datetime.now(UTC),
    )


PRODUCT = PromptVariable(name="product", description="what the help desk supports")
TONE = PromptVariable(name="tone", default="kind")
SIGNATURE = PromptVariable(name="signature", required=False)


def test_passed_values_defaults_and_optional_variables_fill_the_template() -> None:
    support = prompt(
        "About {{ product }}, be {{ tone }}.{% if signature %} {{ signature }}{% endif %}\n", PRODUCT, TONE, SIGNATURE
    )

    assert render_prompt(support, {"product": "Strata"}) == "About Strata, be kind.\n"
    assert render_prompt(support, {"product": "Strata", "tone": "brief", "signature": "-- the team"}) == (
        "About Strata, be brief. -- the team\n"
    )


def test_a_default_makes_a_variable_optional() -> None:
    assert TONE.required is False
    with pytest.raises(ValueError, match="not required"):
        PromptVariable(name="tone", required=True, default="kind")


def test_values_are_not_escaped_and_are_not_evaluated_as_templates() -> None:
    support = prompt("{{ product }}", PRODUCT)

    assert render_prompt(support, {"product": "<b>{{ 7 * 7 }}</b> & co"}) == "<b>{{ 7 * 7 }}</b> & co"


def test_a_missing_required_variable_is_an_error_naming_it() -> None:
    support = prompt("{{ product }} {{ tone }}", PRODUCT, TONE)

    with pytest.raises(PromptVariableError, match="'product'") as raised:
        render_prompt(support, {"tone": "brief"})
    assert (raised.value.variable, raised.value.param) == ("product", "strata.prompt.variables.product")


def test_a_passed_variable_the_version_does_not_declare_is_an_error_naming_it() -> None:
    support = prompt("{{ product }}", PRODUCT)

    with pytest.raises(PromptVariableError, match="no variable 'audience'") as raised:
        render_prompt(support, {"product": "Strata", "audience": "admins"})
    assert raised.value.param == "strata.prompt.variables.audience"


@pytest.mark.parametrize("value", [3, None, ["Strata"]])
def test_values_must_be_strings(value: object) -> None:
    support = prompt("{{ product }}", PRODUCT)

    with pytest.raises(PromptVariableError, match="'product' must be a string"):
        render_prompt(support, {"product": value})  # type: ignore[dict-item]


def test_a_value_over_8_kib_is_refused_and_one_of_8_kib_is_not() -> None:
    support = prompt("{{ product }}", PRODUCT)

    assert len(render_prompt(support, {"product": "x" * 8 * 1024})) == 8 * 1024
    with pytest.raises(PromptVariableError, match="'product' is 8194 bytes"):
        render_prompt(support, {"product": "é" * 4097})


def test_a_template_using_an_undeclared_variable_is_refused_naming_it() -> None:
    with pytest.raises(InvalidPromptError, match="'audience'") as raised:
        check_template("{{ product }} for {{ audience }}", [PRODUCT])
    assert raised.value.param == "template"


def test_a_declared_variable_the_template_never_uses_is_refused_naming_it() -> None:
    with pytest.raises(InvalidPromptError, match="'tone' is never used") as raised:
        check_template("{{ product }}", [PRODUCT, TONE])
    assert raised.value.param == "variables"


def test_names_the_template_sets_itself_and_jinjas_globals_need_no_declaring() -> None:
    loop = prompt(
        "{% set items = product.split(',') %}{% for i in range(items|length) %}{{ items[i] }};{% endfor %}", PRODUCT
    )

    assert render_prompt(loop, {"product": "a,b"}) == "a;b;"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Hello {{ product }\n", "line 1: unexpected '}'"),
        ("{{ product }}\n\n{% if product %}", "line 3: Unexpected end of template"),
        ("{{ product|no_such_filter }}", "No filter named 'no_such_filter'"),
        ("{% include 'other' %}{{ product }}", "'include' is not available"),
        ("{% extends 'base' %}{{ product }}", "'extends' is not available"),
        ("{{ product.__class__.__mro__ }}", "the sandbox refuses names starting with '_'"),
        ("{{ product['__class__'] }}", "'__class__' is not accessible"),
        ("{% if product %}" * 200 + "x" + "{% endif %}" * 200, "nested too deeply"),
        ("{{ " + "(" * 3000 + "product" + ")" * 3000 + " }}", "nested too deeply"),
    ],
)
def test_a_template_that_cannot_work_is_refused_at_create(template: str, message: str) -> None:
    with pytest.raises(InvalidPromptError, match=message) as raised:
        check_template(template, [PRODUCT])
    assert raised.value.param == "template"


def test_the_sandbox_stops_access_to_python_internals_at_render() -> None:
    # The attribute comes from a value, so only the sandbox at render time can refuse it.
    indirect = prompt("{{ product[attribute] }}", PRODUCT, PromptVariable(name="attribute"))

    with pytest.raises(PromptSecurityError, match="unsafe") as raised:
        render_prompt(indirect, {"product": "", "attribute": "__class__"})
    assert "<class" not in str(raised.value)
    with pytest.raises(PromptSecurityError):
        render_prompt(prompt("{{ product|attr('__class__') }}", PRODUCT, version=2), {"product": ""})


@pytest.mark.parametrize("template", ["{{ 10 ** 100000 }}", "{{ 'ab' * 10 ** 9 }}", "{{ '%999999999d' % 1 }}"])
def test_operators_that_would_build_huge_values_are_refused_not_run(template: str) -> None:
    bomb = prompt(template)  # checking it does not fold the constant either

    with pytest.raises(PromptSecurityError):
        render_prompt(bomb, {})


def test_a_runtime_error_in_the_template_is_a_render_error() -> None:
    with pytest.raises(PromptRenderError, match="ZeroDivisionError"):
        render_prompt(prompt("{{ 1 / 0 }}"), {})


def test_a_rendering_that_grows_past_the_cap_is_stopped() -> None:
    loops = prompt(
        "{% for i in range(100000) %}{% for j in range(100) %}{{ product }}{% endfor %}{% endfor %}", PRODUCT
    )

    with pytest.raises(PromptRenderError, match="more than"):
        render_prompt(loops, {"product": "xxxxxxxxxx"})


def test_a_recreated_version_renders_its_own_template_not_a_cached_one() -> None:
    # A deleted name starts again at version 1: same (tenant, name, version), another template.
    assert render_prompt(prompt("old {{ product }}", PRODUCT), {"product": "p"}) == "old p"
    assert render_prompt(prompt("new {{ product }}", PRODUCT), {"product": "p"}) == "new p"


def test_the_trailing_newline_is_kept() -> None:
    assert render_prompt(prompt("Be brief.\n"), {}) == "Be brief.\n"
