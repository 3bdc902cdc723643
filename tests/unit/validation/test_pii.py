"""PII redaction as the answer streams: whatever the split, nothing of a value gets out, and the
stream's output is what ``redact`` makes of the whole answer."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strata.inference import TextDelta
from strata.validation.base import validated
from strata.validation.pii import HOLD_BACK_LIMIT, PLACEHOLDERS, PiiRedactor, redact

EMAIL = "jane.doe@example.com"
CARD_GROUPED = "4111 1111 1111 1111"
CARD_PLAIN = "4111111111111111"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
IBAN = "GB82 WEST 1234 5698 7654 32"
PHONE = "+44 20 7946 0958"
LONG_EMAIL = "x" * 60 + "@" + "mail." * 10 + "example.com"  # near the longest address matched
VALUES = (EMAIL, CARD_GROUPED, CARD_PLAIN, AWS_KEY, IBAN, PHONE, AWS_SECRET)


def stream(chunks: Sequence[str]) -> tuple[list[str], PiiRedactor]:
    redactor = PiiRedactor()
    outputs = [redactor.feed(chunk) for chunk in chunks]
    outputs.append(redactor.finish())
    return outputs, redactor


def forms(value: str) -> set[str]:
    return {value, value.replace(" ", "")}


def fragments(value: str, size: int = 4) -> set[str]:
    compact = value.replace(" ", "")
    return {text[i : i + size] for text in forms(value) for i in range(len(text) - size + 1)} | {compact}


def spans(outputs: Sequence[str]) -> list[str]:
    """Every output chunk and every concatenation of consecutive ones."""
    return ["".join(outputs[i:j]) for i in range(len(outputs)) for j in range(i + 1, len(outputs) + 1)]


def assert_nothing_leaks(value: str, outputs: Sequence[str]) -> None:
    leaked = {(span, form) for span in spans(outputs) for form in forms(value) if form in span}
    assert leaked == set()


def sentence(value: str) -> str:
    return f"Please send {value} to billing, thanks."


# --- every split of a sentence holding one value --------------------------------------------------


@pytest.mark.parametrize("value", VALUES)
def test_no_two_chunk_split_leaks_the_value(value: str) -> None:
    text = sentence(value)
    whole = redact(text)[0]
    for cut in range(len(text) + 1):
        outputs, _ = stream([text[:cut], text[cut:]])
        assert_nothing_leaks(value, outputs)
        assert "".join(outputs) == whole


@pytest.mark.parametrize("value", VALUES)
def test_no_three_chunk_split_leaks_the_value_or_a_fragment_of_it(value: str) -> None:
    text = sentence(value)
    whole = redact(text)[0]
    pieces = fragments(value)
    assert not any(piece in whole for piece in pieces)  # the sentence itself shares no fragment
    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1):
            outputs, _ = stream([text[:first], text[first:second], text[second:]])
            assert "".join(outputs) == whole
            leaked = {piece for span in spans(outputs) for piece in pieces if piece in span}
            assert leaked == set(), (first, second)


@pytest.mark.parametrize("value", VALUES)
def test_a_value_fed_one_character_at_a_time_is_never_sent_in_part(value: str) -> None:
    text = sentence(value)
    outputs, redactor = stream(list(text))
    assert "".join(outputs) == redact(text)[0]
    assert sum(redactor.redactions.values()) == 1
    assert not any(piece in "".join(outputs) for piece in fragments(value))


# --- properties over arbitrary text ---------------------------------------------------------------

# Heavy in what the patterns are made of, so that near-values and separators meet chunk cuts.
NOISE = st.text(alphabet="0123456789" * 4 + "aAkKzZ" + "@.-  +()/\n", max_size=40)
CUTS = st.lists(st.integers(min_value=0, max_value=2_000), max_size=12)


def split(text: str, cuts: Sequence[int]) -> list[str]:
    points = sorted({cut % (len(text) + 1) for cut in cuts})
    return [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.one_of(NOISE, st.sampled_from(VALUES).map(lambda v: f"\n{v}\n")), max_size=8), cuts=CUTS)
def test_any_split_of_noise_and_values_matches_the_one_shot_redaction(parts: list[str], cuts: list[int]) -> None:
    text = "".join(parts)
    outputs, redactor = stream(split(text, cuts))
    whole, counts = redact(text)
    assert "".join(outputs) == whole
    assert redactor.redactions == counts
    for value in {part.strip("\n") for part in parts} & set(VALUES):
        assert_nothing_leaks(value, outputs)


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet="0123456789" * 3 + "AZaz@.-  +()/", min_size=200, max_size=700), cuts=CUTS)
def test_long_runs_without_a_break_split_anywhere_match_the_one_shot_redaction(text: str, cuts: list[int]) -> None:
    outputs, _ = stream(split(text, cuts))
    assert "".join(outputs) == redact(text)[0]


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="abcdefghij klmnopqrstuvwxyz.,;:!?'\"\n", max_size=300), cuts=CUTS)
def test_text_without_personal_data_passes_unchanged(text: str, cuts: list[int]) -> None:
    outputs, redactor = stream(split(text, cuts))
    assert "".join(outputs) == text
    assert redactor.redactions == {}


# Fillers no pattern ends a value at, so the run around the value has no cut but by length
# (hyphens and underscores would belong to the e-mail address itself).
RUNS = [
    (filler, value)
    for filler in "(/)-_"
    for value in (EMAIL, LONG_EMAIL, CARD_PLAIN, AWS_KEY, "DE89370400440532013000")
    if not (value in (EMAIL, LONG_EMAIL) and filler in "-_")
]


@pytest.mark.parametrize(("filler", "value"), RUNS)
@pytest.mark.parametrize("size", [1, 3, 4, 7])
def test_a_value_inside_a_run_longer_than_the_hold_back_is_still_redacted(filler: str, value: str, size: int) -> None:
    text = filler * 150 + value + filler * 150
    outputs, _ = stream([text[i : i + size] for i in range(0, len(text), size)])
    assert "".join(outputs) == redact(text)[0]
    assert_nothing_leaks(value, outputs)


# --- smooth streaming -----------------------------------------------------------------------------


def test_prose_is_released_word_by_word() -> None:
    redactor = PiiRedactor()
    sent = "".join(redactor.feed(ch) for ch in "Kangaroos eat")
    assert sent == "Kangaroos "
    sent += "".join(redactor.feed(ch) for ch in " grass, mostly.")
    assert sent == "Kangaroos eat grass, "
    assert sent + redactor.finish() == "Kangaroos eat grass, mostly."
    assert redactor.outcome == "ok"


def test_a_number_is_released_once_the_next_word_shows_it_ends() -> None:
    redactor = PiiRedactor()
    assert redactor.feed("In 2024 ") == "In "
    assert redactor.feed("the") == "2024 "


def test_a_long_run_without_a_break_is_held_back_no_more_than_the_limit() -> None:
    text = " ".join(str(n % 10) for n in range(1_500))  # one number per space: never a break
    redactor, fed, sent = PiiRedactor(), 0, 0
    for i in range(0, len(text), 4):
        fed += len(text[i : i + 4])
        sent += len(redactor.feed(text[i : i + 4]))
        assert fed - sent <= HOLD_BACK_LIMIT + 4
    assert sent + len(redactor.finish()) == len(text)


# --- what is and is not a value -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Write to john.doe+tag@mail.example.co.uk today", "email"),
        ("Card 4111-1111-1111-1111 expires", "card"),
        ("Amex 3782 822463 10005 ok", "card"),
        ("Amex 378282246310005 ok", "card"),
        ("IBAN GB82WEST12345698765432 ok", "iban"),
        ("IBAN DE89 3704 0044 0532 0130 00.", "iban"),
        ("IBAN NO93 8601 1117 947 ok", "iban"),
        ("key ASIAY34FZKBOKMUTVV7A here", "aws_key"),
        ("secret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", "aws_secret"),
        ("call +1 (555) 123-4567 now", "phone"),
        ("call +14155552671 now", "phone"),
        ("call +49 (0)30 1234567 now", "phone"),
        ("call 555-123-4567 now", "phone"),
        ("call 555.123.4567 now", "phone"),
        ("call (555) 123-4567 now", "phone"),
        ("call 1-800-555-0199 now", "phone"),
        ("call 020 7946 0958 now", "phone"),
        ("call (020) 7946 0958 now", "phone"),
        ("call 01 23 45 67 89 now", "phone"),
        ("call 0171 1234567 now", "phone"),
    ],
)
def test_each_kind_of_value_is_replaced_by_its_placeholder(text: str, kind: str) -> None:
    redacted, counts = redact(text)
    assert counts == {kind: 1}
    assert PLACEHOLDERS[kind] in redacted
    assert not any(ch.isdigit() for ch in redacted.replace(PLACEHOLDERS[kind], ""))


@pytest.mark.parametrize(
    "text",
    [
        "A Luhn-invalid 4111 1111 1111 1112 or 4111111111111112 is no card.",
        "It grew in 2024, from 1990-2000 and on 2024-01-15, 15.01.2024 and 05.03.2024 10:30.",
        "As shown in [3] and [1, 2], pi is 3.14159 and e is 2.71828182845; +3.14159265 too.",
        "Short numbers: 42, 1234, 555-1234, 12 34 56, 1,234,567 and 08.30-09.45.",
        "Sizes 256 512 1024 and 100 200 3000.",
        "A bad check digit: GB83 WEST 1234 5698 7654 32 or GB83WEST12345698765432.",
        "A sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 and AKIAIOSFODNN7EXAMPLEX1 are not keys.",
        "/usr/Local/Lib/Python3/Site/Packages/abc/d",
        "Kangaroos mostly eat grasses and shrubs; they rest in the heat of the day.",
    ],
)
def test_numbers_and_prose_that_are_no_value_are_untouched(text: str) -> None:
    assert redact(text) == (text, {})
    outputs, _ = stream(list(text))
    assert "".join(outputs) == text


def test_an_iban_running_into_a_word_of_capitals_still_ends_where_its_country_says() -> None:
    assert redact("AT61 1904 3002 3457 3201 NOTE") == ("[iban redacted] NOTE", {"iban": 1})


def test_redactions_count_each_kind() -> None:
    text = f"{EMAIL}, bob@example.org; {CARD_GROUPED}; {AWS_KEY}; {IBAN}; {PHONE}; 555-123-4567."
    outputs, redactor = stream([text[i : i + 5] for i in range(0, len(text), 5)])
    assert redactor.redactions == {"email": 2, "card": 1, "aws_key": 1, "iban": 1, "phone": 2}
    assert redact(text)[1] == redactor.redactions
    assert "".join(outputs) == (
        "[email redacted], [email redacted]; [card redacted]; [aws key redacted]; [iban redacted];"
        " [phone redacted]; [phone redacted]."
    )


def test_the_redactor_rewrites_a_validated_stream() -> None:
    deltas = [TextDelta(piece) for piece in ("Mail jane.d", "oe@exam", "ple.com or pay 4111 11", "11 1111 1111.")]
    redactor = PiiRedactor()
    events = list(validated(iter(deltas), [redactor]))
    assert "".join(event.text for event in events) == "Mail [email redacted] or pay [card redacted]."
    assert not any("@" in event.text or "4111" in event.text for event in events)
    assert redactor.outcome == "redacted"  # what the request log says
