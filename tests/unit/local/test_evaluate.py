from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from strata.ingest import Chunker
from strata_local import evaluate
from strata_local.evaluate import (
    DatasetError,
    EvalQuestion,
    add_eval_command,
    article_topic,
    load_questions,
    retrieval_metrics,
    select_questions,
    split_of,
)

ARTICLES = {
    "s01_set1_a1_kangaroo.txt": "Kangaroo\n\nThe kangaroo is a marsupial from Australia. Kangaroos hop far.\n",
    "s01_set1_a2_penguin.txt": "Penguin\n\nThe penguin is a flightless bird of Antarctica. Penguins swim well.\n",
    "s01_set1_a3_volcano.txt": "Volcano\n\nA volcano erupts lava and ash. Volcanoes build mountains.\n",
}
QUESTIONS = [
    # Both modes find it first.
    ("Where does the kangaroo live?", "s01_set1_a1_kangaroo.txt"),
    # No word of the question is in any article: keyword search finds nothing, the embedder
    # knows "joey" is about kangaroos.
    ("How big is a baby joey?", "s01_set1_a1_kangaroo.txt"),
    ("Do penguins swim in Antarctica?", "s01_set1_a2_penguin.txt"),
    # Words the embedder does not know: every article is as similar, so vector search ranks
    # them in indexing order and the volcano comes third; keyword search finds it first.
    ("Which mountains erupt ash?", "s01_set1_a3_volcano.txt"),
]
TOPIC_WORDS = ({"kangaroo", "kangaroos", "joey"}, {"penguin", "penguins"}, {"volcano", "volcanoes"})


class TopicEmbedder:
    """One dimension per topic (its words counted) and a constant one, so no vector is zero."""

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        vectors = []
        for text in texts:
            words = re.findall(r"\w+", text.lower())
            vectors.append([float(sum(w in topic for w in words)) for topic in TOPIC_WORDS] + [1.0])
        return vectors


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    documents = tmp_path / "wiki-qa" / "documents"
    documents.mkdir(parents=True)
    for name, text in ARTICLES.items():
        (documents / name).write_text(text)
    rows = [{"question": q, "answer": "x", "document": d} for q, d in QUESTIONS]
    rows.append(rows[0])  # a question asked twice is scored once
    (tmp_path / "wiki-qa" / "qa.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return tmp_path / "wiki-qa"


def test_evaluate_scores_each_mode_by_the_rank_of_the_questions_article(dataset: Path) -> None:
    report = evaluate.evaluate(dataset, embedder=TopicEmbedder(), chunker=Chunker.for_embedding_model(120, 20))

    assert (report.articles, report.chunks, report.questions) == (3, 3, 4)
    # keyword ranks: 1, none, 1, 1; vector ranks: 1, 1, 1, 3; hybrid: the volcano's keyword hit
    # lifts it over the tie, the joey question's vector hit fills keyword's gap.
    assert report.metrics == {
        "keyword": {"hit@1": 0.75, "hit@5": 0.75, "hit@10": 0.75, "mrr": 0.75},
        "vector": {"hit@1": 0.75, "hit@5": 1.0, "hit@10": 1.0, "mrr": pytest.approx((3 + 1 / 3) / 4)},
        "hybrid": {"hit@1": 1.0, "hit@5": 1.0, "hit@10": 1.0, "mrr": 1.0},
    }


def test_eval_json_prints_one_object_per_the_contract_and_nothing_else(
    dataset: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(evaluate, "SentenceTransformersEmbedder", TopicEmbedder)
    parser = argparse.ArgumentParser()
    add_eval_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", "--dataset", str(dataset), "--json"])

    assert args.run(args) == 0

    printed = json.loads(capsys.readouterr().out)  # fails on anything but one JSON document
    assert list(printed) == ["keyword", "vector", "hybrid"]
    for metrics in printed.values():
        assert {"hit@5", "mrr"} <= set(metrics)
    assert printed["keyword"]["hit@5"] == 0.75


def test_eval_answers_says_what_it_needs(dataset: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_eval_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", "--dataset", str(dataset), "--answers"])

    assert args.run(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--api-url" in captured.err


def test_load_questions_rejects_a_folder_that_is_not_a_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="qa.jsonl"):
        load_questions(tmp_path)


def test_retrieval_metrics_cut_mrr_at_the_deepest_cutoff() -> None:
    metrics = retrieval_metrics([1, 2, None, 11], cutoffs=(1, 5, 10))

    assert metrics == {"hit@1": 0.25, "hit@5": 0.5, "hit@10": 0.5, "mrr": pytest.approx((1 + 0.5) / 4)}


def test_split_keeps_every_revision_of_an_article_in_one_half() -> None:
    assert article_topic("s08_set3_a4_abraham_lincoln.txt") == "abraham_lincoln"
    assert split_of("s08_set1_a7_otter.txt") == split_of("s09_set2_a1_otter.txt")


def test_select_questions_splits_into_two_disjoint_halves_deterministically() -> None:
    questions = [EvalQuestion(f"q{i}", f"s08_set1_a{i}_topic{i}.txt") for i in range(40)]

    tuning, held_out = select_questions(questions, "tuning"), select_questions(questions, "held-out")

    assert sorted(q.text for q in tuning + held_out) == sorted(q.text for q in questions)
    assert tuning and held_out
    assert select_questions(questions, "tuning") == tuning
    assert select_questions(questions, "all", limit=5) == select_questions(questions, "all")[:5]
