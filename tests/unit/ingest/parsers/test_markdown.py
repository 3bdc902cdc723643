from __future__ import annotations

from strata.ingest import Section, parse_document

GUIDE = """---
title: front matter is not a heading
---
# Guide

Intro text.

## Install

```sh
# a shell comment, not a heading
pip install strata
```

### On Linux ###

Use the package manager.

Upgrading
---------

Run it again.

# Appendix

Thanks.
"""


def test_markdown_headings_become_nested_sections_at_their_lines() -> None:
    page = parse_document(GUIDE.encode(), key="guide.md").pages[0]

    assert page.text == GUIDE  # indexed as written
    assert [section.heading_path for section in page.sections] == [
        ("Guide",),
        ("Guide", "Install"),
        ("Guide", "Install", "On Linux"),
        ("Guide", "Upgrading"),
        ("Appendix",),
    ]
    lines = ["# Guide", "## Install", "### On Linux ###", "Upgrading\n---", "# Appendix"]
    for section, line in zip(page.sections, lines, strict=True):
        assert page.text[section.char_start :].startswith(line)


def test_a_skipped_heading_level_still_nests_under_the_last_heading() -> None:
    page = parse_document(b"# A\n\n### C\n\n## B\n", key="x.md").pages[0]

    assert page.sections == (Section(0, ("A",)), Section(5, ("A", "C")), Section(12, ("A", "B")))


def test_lines_that_only_look_like_headings_are_not_sections() -> None:
    text = "#hashtag\n\n    # indented code\n\nfirst line\nsecond line\n---\n\n- item\n---\n"

    assert parse_document(text.encode(), key="x.md").pages[0].sections == ()


def test_the_title_is_the_first_level_one_heading_setext_included() -> None:
    assert parse_document(b"Intro\n\nThe Title\n=========\n\nBody.", key="x.md").title == "The Title"
