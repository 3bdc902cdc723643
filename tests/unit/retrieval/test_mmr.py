from __future__ import annotations

import numpy as np
import pytest

from strata.retrieval.mmr import mmr_order, mmr_select, text_similarity
from tests.fakes import hit

KANGAROO = "Kangaroos are marsupials that hop across the Australian outback and eat grass."
PENGUIN = "Penguins are flightless birds that swim in the cold seas around Antarctica."


def test_mmr_select_skips_a_near_copy_of_a_hit_it_already_kept() -> None:
    hits = [
        hit("kangaroo", 0, 0.9, KANGAROO),
        hit("kangaroo-copy", 0, 0.85, KANGAROO + " Also"),
        hit("penguin", 0, 0.6, PENGUIN),
        hit("volcano", 0, 0.1, "Volcanoes erupt lava."),
    ]

    kept = mmr_select(hits, k=2, lambda_=0.5)

    assert [h.document_id for h in kept] == ["kangaroo", "penguin"]


def test_mmr_select_with_lambda_one_keeps_the_search_order_and_scores() -> None:
    hits = [hit("a", 0, 0.9, KANGAROO), hit("b", 0, 0.85, KANGAROO), hit("c", 0, 0.6, PENGUIN)]

    kept = mmr_select(hits, k=3, lambda_=1.0)

    assert kept == hits


def test_mmr_order_trades_relevance_for_variety_as_lambda_falls() -> None:
    relevance = np.array([1.0, 0.9, 0.5])
    similarity = np.array([[1.0, 0.95, 0.1], [0.95, 1.0, 0.1], [0.1, 0.1, 1.0]])

    assert mmr_order(relevance, similarity, 2, 0.9) == [0, 1]
    assert mmr_order(relevance, similarity, 2, 0.5) == [0, 2]


def test_mmr_order_returns_at_most_the_items_it_has() -> None:
    assert mmr_order(np.array([0.2, 0.4]), np.eye(2), 5, 0.7) == [1, 0]


@pytest.mark.parametrize("lambda_", [-0.1, 1.5])
def test_mmr_order_rejects_a_lambda_outside_the_unit_range(lambda_: float) -> None:
    with pytest.raises(ValueError, match="lambda"):
        mmr_order(np.array([1.0]), np.eye(1), 1, lambda_)


def test_text_similarity_is_one_for_the_same_words_and_low_for_others() -> None:
    similarity = text_similarity([KANGAROO, KANGAROO.upper(), PENGUIN, ""])

    assert similarity[0, 1] == pytest.approx(1.0)
    assert similarity[0, 2] < 0.4
    assert similarity[3].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_mmr_select_of_nothing_is_nothing() -> None:
    assert mmr_select([], k=3, lambda_=0.5) == []
