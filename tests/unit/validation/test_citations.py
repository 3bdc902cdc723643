from __future__ import annotations

import pytest

from strata.prompts.assembler import source_block
from strata.retrieval import SearchHit
from strata.validation import CitationCheck
from strata.validation.citations import build_citations
from tests.fakes import hit

SOURCES = [hit("kangaroo", 0, 0.9), hit("wombat", 1, 0.5), hit("emu", 2, 0.3)]


def run(chunks: list[str], *, attribute: bool = False) -> tuple[str, CitationCheck]:
    check = CitationCheck(SOURCES, attribute=attribute)
    out = [check.feed(chunk) for chunk in chunks]
    out.append(check.finish())
    return "".join(out), check


@pytest.mark.parametrize(
    ("answer", "expected", "removed"),
    [
        ("Kangaroos eat grass [1].", "Kangaroos eat grass [1].", 0),
        ("Kangaroos eat grass [7].", "Kangaroos eat grass.", 1),
        ("Grass [1, 7] and roots [2][9].", "Grass [1] and roots [2].", 2),
        ("Grass [ 3 ].", "Grass [3].", 0),
        ("Arrays [a] and [] stay.", "Arrays [a] and [] stay.", 0),
        ("Never [0] nor [12]", "Never nor", 2),
    ],
)
def test_markers_pointing_at_no_given_source_are_removed_and_counted(answer: str, expected: str, removed: int) -> None:
    text, check = run([answer])
    assert text == expected
    assert check.removed == removed


def test_a_marker_split_across_chunks_is_held_until_whole() -> None:
    answer = "Kangaroos eat grass [12] and shrubs [2]."
    for cut in range(1, len(answer)):
        for second in range(cut, len(answer)):
            chunks = [answer[:cut], answer[cut:second], answer[second:]]
            check = CitationCheck(SOURCES, attribute=False)
            emitted = [check.feed(chunk) for chunk in chunks] + [check.finish()]
            assert "".join(emitted) == "Kangaroos eat grass and shrubs [2]."
            assert not any("12" in piece or piece.endswith("[1") for piece in emitted)


def test_the_citations_say_which_given_sources_the_answer_cites() -> None:
    _, check = run(["Grass [1", "] and burrows [3]."])
    assert [(c.index, c.document_id, c.referenced) for c in check.citations] == [
        (1, "kangaroo", True),
        (2, "wombat", False),
        (3, "emu", True),
    ]


ATTRIBUTED = [
    hit("kangaroo", 0, 0.9, "The red kangaroo eats grass and shrubs in central Australia."),
    hit("lincoln", 1, 0.5, "Abraham Lincoln was the 16th President of the United States."),
]


def test_a_supported_sentence_without_a_marker_gets_its_sources_marker_before_its_full_stop() -> None:
    answer = "Lincoln was the 16th President. Red kangaroos eat grass! Pi is 3.14 and tea is nice. Yes."
    expected = "Lincoln was the 16th President [2]. Red kangaroos eat grass [1]! Pi is 3.14 and tea is nice. Yes."
    for cut in range(1, len(answer)):
        check = CitationCheck(ATTRIBUTED)
        emitted = [check.feed(answer[:cut]), check.feed(answer[cut:]), check.finish()]
        assert "".join(emitted) == expected
    assert check.added == 2 and check.outcome == "citations_added"
    assert [c.referenced for c in check.citations] == [True, True]


def test_a_sentence_the_model_marked_itself_is_left_as_it_is() -> None:
    check = CitationCheck(ATTRIBUTED)
    text = check.feed("Red kangaroos eat grass [2]. ") + check.finish()
    assert text == "Red kangaroos eat grass [2]. " and check.added == 0


def test_a_citation_names_the_headings_its_passage_sits_under() -> None:
    hit = SearchHit(
        tenant="acme",
        document_id="d",
        chunk_index=3,
        text="Run the installer.",
        source_key="tenants/acme/guide.md",
        title="Guide",
        char_start=0,
        char_end=18,
        score=1.0,
        heading_path=["Install", "On Linux"],
    )

    (citation,) = build_citations([hit], "Run the installer [1].")

    assert citation.heading_path == ["Install", "On Linux"] and citation.referenced
    assert 'title="Guide › Install › On Linux"' in source_block(1, hit)
