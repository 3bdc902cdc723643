"""The answer-quality benchmark's scoring rules: gold matching, loops, markers, refusals, AUROC."""

from __future__ import annotations

import pytest

from bench.answer_quality import (
    auroc,
    consistent_golds,
    contains_gold,
    has_marker,
    histogram,
    is_honest_refusal,
    looped,
    normalize,
    repeats_itself,
    yes_no_polarity,
)


def test_normalize_drops_case_punctuation_and_articles() -> None:
    assert normalize("The  United-States Note, an act!") == "united states note act"


def test_a_span_gold_matches_at_word_boundaries_only() -> None:
    assert contains_gold("He moved to Budapest in 1880 [1].", ["Budapest"])
    assert contains_gold("They called it the Roaring Twenties.", ['the "Roaring Twenties"'])
    assert not contains_gold("The answer is 17550.", ["1755"])
    assert not contains_gold("Tenfold growth.", ["ten"])


def test_any_of_several_golds_is_enough() -> None:
    golds = ["In 1880, Nikola Tesla moved to Budapest.", "Budapest"]
    assert contains_gold("Tesla went to Budapest.", golds)
    assert not contains_gold("Tesla went to Prague.", golds)


def test_a_yes_no_gold_is_judged_by_the_answers_first_yes_no_word() -> None:
    assert contains_gold("Yes, he signed it in 1863.", ["Yes."])
    assert contains_gold("Lincoln did, yes.", ["yes, he did"])
    assert not contains_gold("No. He did not sign it, yes really.", ["yes"])
    assert not contains_gold("Lincoln signed the National Banking Act.", ["yes"])  # no yes/no word at all


def test_yes_no_polarity_reads_whole_words() -> None:
    assert yes_no_polarity("Nobody knows; yes it is.") == "yes"
    assert yes_no_polarity("It is not known.") is None


def test_golds_that_disagree_on_yes_no_are_inconsistent() -> None:
    assert consistent_golds(["yes", "Yes, in 1863", "He signed it"])
    assert not consistent_golds(["yes", "No."])


def test_repeated_six_word_sequence_or_sentence_is_repetition() -> None:
    phrase = "the koala eats eucalyptus leaves every day "
    assert repeats_itself(phrase * 3)
    assert not repeats_itself(phrase * 2)
    assert repeats_itself("Koalas sleep a lot. They eat leaves. Koalas sleep a lot.")
    assert not repeats_itself("Yes. Yes.")  # sentences under three words do not count


def test_a_loop_is_repetition_that_ran_into_the_token_cap() -> None:
    text = "Koalas sleep a lot. " * 5
    assert looped(text, "length")
    assert not looped(text, "stop")
    assert not looped("Koalas are marsupials that live in eastern Australia and eat", "length")


def test_markers_are_bracketed_numbers() -> None:
    assert has_marker("Budapest [1].")
    assert has_marker("Budapest [1, 3].")
    assert not has_marker("Budapest (1). Source 1.")
    assert not has_marker("[Santiago]")


@pytest.mark.parametrize(
    "text",
    [
        "I could not find that in your documents.",
        "The provided sources don't mention tungsten.",
        "There is no information about this in the documents. Tungsten is a metal.",
        "I do not know.",
    ],
)
def test_honest_refusals_are_recognised(text: str) -> None:
    assert is_honest_refusal(text)


@pytest.mark.parametrize(
    "text",
    [
        "Tungsten boils at 5,555 °C [1].",
        "According to the documents, tungsten boils at 5,555 °C.",
        "Tungsten boils at 5,555 °C. It melts at 3,422 °C. It is not found in the documents.",  # too late
    ],
)
def test_confident_answers_are_not_refusals(text: str) -> None:
    assert not is_honest_refusal(text)


def test_auroc_is_one_for_separated_scores_and_half_for_ties() -> None:
    assert auroc([0.9, 0.8], [0.1, 0.2, 0.3]) == 1.0
    assert auroc([0.1], [0.9]) == 0.0
    assert auroc([0.5, 0.5], [0.5]) == 0.5


def test_auroc_matches_the_pairwise_count() -> None:
    positives, negatives = [0.2, 0.6, 0.6, 0.9], [0.1, 0.6, 0.7]
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    assert auroc(positives, negatives) == pytest.approx(sum(pairs) / len(pairs))


def test_auroc_without_both_classes_is_an_error() -> None:
    with pytest.raises(ValueError, match="positive and one negative"):
        auroc([0.3], [])


def test_histogram_puts_one_in_the_last_bin() -> None:
    assert histogram([0.0, 0.05, 0.55, 1.0], bins=10) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 1]
