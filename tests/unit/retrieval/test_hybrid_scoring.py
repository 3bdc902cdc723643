from __future__ import annotations

import pytest

from strata.retrieval import HybridConfig, fts5_match_expression, keyword_terms
from strata.retrieval.hybrid import (
    Fusion,
    cosine_score,
    fuse,
    min_max_normalize,
    reciprocal_ranks,
    z_score_normalize,
)

EVEN_MIN_MAX = HybridConfig(keyword_weight=0.5, vector_weight=0.5, fusion=Fusion.MIN_MAX)


def test_min_max_normalize_maps_scores_to_unit_range_with_a_floor_for_the_lowest() -> None:
    normalized = min_max_normalize({"a": 10.0, "b": 6.0, "c": 2.0})

    # OpenSearch turns an exact 0 into 0.001 so the weakest hit still counts.
    assert normalized == {"a": 1.0, "b": 0.5, "c": 0.001}


@pytest.mark.parametrize("scores", [{"only": 3.2}, {"a": 0.7, "b": 0.7}])
def test_min_max_normalize_gives_one_when_all_scores_are_equal(scores: dict[str, float]) -> None:
    assert set(min_max_normalize(scores).values()) == {1.0}


def test_min_max_normalize_of_nothing_is_nothing() -> None:
    assert min_max_normalize({}) == {}


def test_fuse_counts_a_missing_sub_query_as_zero_with_its_weight() -> None:
    keyword = {"a": 10.0, "b": 5.0}
    vector = {"b": 0.9, "c": 0.8}

    ranked = fuse(keyword, vector, EVEN_MIN_MAX)

    # a: (1.0 + 0) / 2; b: (0.001 + 1.0) / 2; c: (0 + 0.001) / 2
    assert [(key, pytest.approx(score)) for key, score in ranked] == [("b", 0.5005), ("a", 0.5), ("c", 0.0005)]


def test_fuse_applies_the_weights_in_keyword_vector_order() -> None:
    keyword = {"kw": 3.0, "vec": 1.0}
    vector = {"kw": 0.6, "vec": 0.9}

    keyword_heavy = fuse(keyword, vector, HybridConfig(keyword_weight=0.8, vector_weight=0.2))
    vector_heavy = fuse(keyword, vector, HybridConfig(keyword_weight=0.2, vector_weight=0.8))

    assert [key for key, _ in keyword_heavy] == ["kw", "vec"]
    assert [key for key, _ in vector_heavy] == ["vec", "kw"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"keyword_weight": 0.7, "vector_weight": 0.7},
        {"keyword_weight": 1.2, "vector_weight": -0.2},
        {"candidates": 0},
        {"fusion": "harmonic"},
        {"fusion": "rrf", "rank_constant": 0},
    ],
)
def test_hybrid_config_rejects_what_opensearch_rejects(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        HybridConfig(**kwargs)


def test_hybrid_config_depth_is_at_least_k() -> None:
    config = HybridConfig(keyword_weight=0.3, vector_weight=0.7, candidates=20)

    assert (config.depth(5), config.depth(30)) == (20, 30)
    assert config.weights == (0.3, 0.7)


def test_z_score_normalize_centres_and_scales_and_is_zero_when_all_equal() -> None:
    assert z_score_normalize({"a": 3.0, "b": 1.0}) == pytest.approx({"a": 1.0, "b": -1.0})
    assert z_score_normalize({"a": 2.0, "b": 2.0}) == {"a": 0.0, "b": 0.0}
    assert z_score_normalize({}) == {}


def test_z_score_fusion_gives_a_missing_hit_the_lowest_score_the_sub_query_returned() -> None:
    keyword = {"a": 3.0, "b": 1.0}  # z: a 1, b -1
    vector = {"c": 0.9, "b": 0.7}  # z: c 1, b -1
    config = HybridConfig(keyword_weight=0.5, vector_weight=0.5, fusion="z_score")

    ranked = dict(fuse(keyword, vector, config))

    # a: (1 + -1) / 2 (missing from vector: its floor -1); b: (-1 + -1) / 2; c like a.
    assert ranked == pytest.approx({"a": 0.0, "b": -1.0, "c": 0.0})


def test_reciprocal_ranks_use_the_rank_constant() -> None:
    assert reciprocal_ranks({"a": 0.2, "b": 0.9}, rank_constant=10) == {"b": 1 / 11, "a": 1 / 12}


def test_rrf_fusion_ignores_score_scales_and_rewards_agreement() -> None:
    keyword = {"a": 40.0, "b": 39.0, "c": 1.0}  # BM25: a far ahead
    vector = {"b": 0.8, "c": 0.79, "a": 0.1}
    config = HybridConfig(keyword_weight=0.5, vector_weight=0.5, fusion=Fusion.RRF, rank_constant=1)

    ranked = fuse(keyword, vector, config)

    # b: (1/3 + 1/2) / 2, a: (1/2 + 1/4) / 2, c: (1/4 + 1/3) / 2.
    assert [key for key, _ in ranked] == ["b", "a", "c"]
    assert ranked[0][1] == pytest.approx((1 / 3 + 1 / 2) / 2)


def test_rrf_weights_favour_their_sub_query() -> None:
    keyword, vector = {"kw": 2.0, "vec": 1.0}, {"vec": 0.9, "kw": 0.8}

    vector_heavy = fuse(keyword, vector, HybridConfig(keyword_weight=0.3, vector_weight=0.7, fusion="rrf"))

    assert [key for key, _ in vector_heavy] == ["vec", "kw"]


def test_pipeline_processor_names_the_fusion_opensearch_runs() -> None:
    min_max = HybridConfig(keyword_weight=0.3, vector_weight=0.7, fusion="min_max").pipeline_processor()
    rrf = HybridConfig(keyword_weight=0.5, vector_weight=0.5, fusion="rrf", rank_constant=20).pipeline_processor()

    assert min_max == {
        "normalization-processor": {
            "normalization": {"technique": "min_max"},
            "combination": {"technique": "arithmetic_mean", "parameters": {"weights": [0.3, 0.7]}},
        }
    }
    assert rrf == {
        "score-ranker-processor": {
            "combination": {"technique": "rrf", "rank_constant": 20, "parameters": {"weights": [0.5, 0.5]}}
        }
    }


def test_cosine_score_is_opensearch_cosinesimil() -> None:
    assert (cosine_score(1.0), cosine_score(0.0), cosine_score(-1.0)) == (1.0, 0.5, 0.0)


def test_keyword_terms_lowercase_dedupe_and_drop_english_stop_words() -> None:
    assert keyword_terms("What is THE refund policy? Refund, policy!") == ["what", "refund", "policy"]


def test_keyword_terms_split_on_every_non_word_character() -> None:
    assert keyword_terms('a_b "c"* NEAR(d) e:f ^g -h café Cafe\u0301') == [
        "b",
        "c",
        "near",
        "d",
        "e",
        "f",
        "g",
        "h",
        "café",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"foo" OR bar*', '"foo" OR "bar"'),
        ("NEAR(", '"near"'),
        ("col:value", '"col" OR "value"'),
        ("the and of", None),
        ("", None),
        ("'\"*^()", None),
    ],
)
def test_fts5_match_expression_quotes_every_term(text: str, expected: str | None) -> None:
    assert fts5_match_expression(text) == expected


def test_keyword_terms_are_capped() -> None:
    assert len(keyword_terms(" ".join(f"word{i}" for i in range(500)))) == 64
