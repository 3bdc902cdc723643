from __future__ import annotations

from strata.validation import answer_confidence

KANGAROO = "The red kangaroo eats grass and shrubs. It lives in central Australia and weighs up to 90 kg."
LINCOLN = "Abraham Lincoln was the 16th President of the United States, from 1861 until 1865."


def test_a_supported_answer_scores_high_and_an_invented_one_low() -> None:
    supported = answer_confidence("The red kangaroo eats grass [1].", [KANGAROO])
    invented = answer_confidence("The red kangaroo eats insects in Brazil [1].", [KANGAROO])
    assert supported is not None and invented is not None
    assert supported >= 0.9 and invented < 0.6 and supported > invented


def test_a_wrong_number_or_name_weighs_more_than_a_wrong_word() -> None:
    right = answer_confidence("Lincoln was President from 1861 [1].", [LINCOLN])
    wrong_year = answer_confidence("Lincoln was President from 1871 [1].", [LINCOLN])
    wrong_word = answer_confidence("Lincoln was leader from 1861 [1].", [LINCOLN])
    assert right == 1.0
    assert wrong_year < wrong_word < right


def test_each_sentence_is_checked_against_the_source_it_cites() -> None:
    sources = [KANGAROO, LINCOLN]
    well_cited = answer_confidence("Kangaroos eat grass [1]. Lincoln was the 16th President [2].", sources)
    miscited = answer_confidence("Kangaroos eat grass [2]. Lincoln was the 16th President [1].", sources)
    assert well_cited > miscited


def test_a_short_answer_is_checked_with_the_question_it_answers() -> None:
    on_topic = answer_confidence("Yes.", [LINCOLN], question="Was Lincoln the 16th President?")
    off_topic = answer_confidence("Yes.", [LINCOLN], question="Was Napoleon born in Corsica?")
    assert on_topic is not None and off_topic is not None and on_topic > off_topic


def test_no_sources_or_no_answer_gives_no_score() -> None:
    assert answer_confidence("Kangaroos eat grass.", []) is None
    assert answer_confidence("  ", [KANGAROO]) is None
