from __future__ import annotations

import pytest

from strata.retrieval import is_follow_up, search_query


@pytest.mark.parametrize(
    "question",
    ["In which century?", "When was he born?", "And the wombat?", "What about its diet?", "Why?"],
)
def test_follow_ups_are_recognised(question: str) -> None:
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    ["Who wrote Hamlet?", "What do kangaroos eat?", "Did Lincoln sign the National Banking Act of 1863?"],
)
def test_questions_that_stand_alone_are_not_follow_ups(question: str) -> None:
    assert not is_follow_up(question)


def test_a_follow_up_is_searched_with_the_previous_question_and_the_start_of_its_answer() -> None:
    conversation = [
        ("user", "Who wrote Hamlet?"),
        ("assistant", "Hamlet was written by William Shakespeare [1]. It is a tragedy."),
        ("user", "In which century?"),
    ]
    assert (
        search_query(conversation) == "Who wrote Hamlet? Hamlet was written by William Shakespeare. In which century?"
    )


def test_a_question_that_stands_alone_is_searched_as_it_is() -> None:
    conversation = [("user", "Who wrote Hamlet?"), ("assistant", "Shakespeare."), ("user", "What do kangaroos eat?")]
    assert search_query(conversation) == "What do kangaroos eat?"
    assert search_query([("system", "Be brief.")]) == ""
