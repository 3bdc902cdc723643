"""The prompt store against moto's DynamoDB."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from strata.prompts import (
    InvalidPromptError,
    PromptConflictError,
    PromptNotFoundError,
    PromptStore,
    PromptVariable,
)
from tests.fakes import serialized_moto_dynamodb


@pytest.fixture
def store(table: Any) -> PromptStore:
    return PromptStore(table, sleep=lambda _: None)


def test_each_create_is_the_next_version_and_get_returns_the_latest(store: PromptStore, table: Any) -> None:
    first = store.create("acme", "support", "Be brief.\n{sources}", description="v1", created_by="k1")
    second = store.create("acme", "support", "Be thorough.\n{sources}")

    assert (first.version, second.version) == (1, 2)
    assert store.get("acme", "support") == second
    assert store.get("acme", "support", 1) == first
    assert (first.description, first.created_by) == ("v1", "k1")
    assert {item["prompt_version"] for item in table.scan()["Items"]} == {"support#000001", "support#000002"}


def test_versions_sort_numerically_past_nine(store: PromptStore) -> None:
    for n in range(1, 12):
        store.create("acme", "p", f"template {n}")

    assert store.get("acme", "p").version == 11
    assert store.get("acme", "p").template == "template 11"
    assert [v.version for v in store.versions("acme", "p")] == list(range(1, 12))


def test_list_gives_the_latest_of_each_name_and_prefixes_do_not_mix(store: PromptStore) -> None:
    store.create("acme", "a", "a1")
    store.create("acme", "a", "a2")
    store.create("acme", "a.b", "ab1")  # "a#..." must not match "a.b#..."
    store.create("acme", "b", "b1")

    assert [(p.name, p.version, p.template) for p in store.list("acme")] == [
        ("a", 2, "a2"),
        ("a.b", 1, "ab1"),
        ("b", 1, "b1"),
    ]
    assert [p.version for p in store.versions("acme", "a")] == [1, 2]


def test_a_writer_that_loses_the_race_takes_the_next_number(table: Any) -> None:
    rival = PromptStore(table)

    class RacingTable:
        """The table, with a rival write landing between our read and our conditional put."""

        meta = table.meta
        raced = False

        def query(self, **kwargs: Any) -> Any:
            return table.query(**kwargs)

        def put_item(self, **kwargs: Any) -> Any:
            if not self.raced:
                self.raced = True
                rival.create("acme", "p", "the rival's")
            return table.put_item(**kwargs)

    mine = PromptStore(RacingTable(), sleep=lambda _: None).create("acme", "p", "mine")

    assert mine.version == 2
    assert [(v.version, v.template) for v in rival.versions("acme", "p")] == [(1, "the rival's"), (2, "mine")]


def test_concurrent_creates_never_share_a_version(store: PromptStore) -> None:
    created: list[int] = []
    start = threading.Barrier(6)

    def create(n: int) -> None:
        start.wait()
        created.append(store.create("acme", "p", f"t{n}").version)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    with serialized_moto_dynamodb():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert sorted(created) == [1, 2, 3, 4, 5, 6]
    assert len(store.versions("acme", "p")) == 6


def test_a_writer_that_always_loses_gives_up_with_a_conflict(table: Any) -> None:
    class AlwaysTaken:
        meta = table.meta

        def query(self, **kwargs: Any) -> Any:
            return {"Items": []}

        def put_item(self, **kwargs: Any) -> Any:
            raise table.meta.client.exceptions.ConditionalCheckFailedException(
                {"Error": {"Code": "ConditionalCheckFailedException", "Message": "taken"}}, "PutItem"
            )

    with pytest.raises(PromptConflictError, match="3 concurrent writes"):
        PromptStore(AlwaysTaken(), attempts=3, sleep=lambda _: None).create("acme", "p", "t")


def test_prompts_are_per_tenant(store: PromptStore) -> None:
    store.create("acme", "support", "acme's")

    with pytest.raises(PromptNotFoundError):
        store.get("globex", "support")
    assert store.list("globex") == []
    with pytest.raises(PromptNotFoundError):
        store.delete("globex", "support")
    assert store.create("globex", "support", "globex's").version == 1
    assert store.get("acme", "support").template == "acme's"


def test_delete_removes_every_version_and_frees_the_name(store: PromptStore) -> None:
    for n in range(3):
        store.create("acme", "p", f"t{n}")
    store.create("acme", "q", "stays")

    assert store.delete("acme", "p") == 3
    with pytest.raises(PromptNotFoundError):
        store.get("acme", "p")
    with pytest.raises(PromptNotFoundError):
        store.versions("acme", "p")
    assert [p.name for p in store.list("acme")] == ["q"]
    assert store.create("acme", "p", "again").version == 1


def test_unknown_versions_are_not_found(store: PromptStore) -> None:
    store.create("acme", "p", "t")
    for version in (2, 0, 10**7):
        with pytest.raises(PromptNotFoundError):
            store.get("acme", "p", version)


@pytest.mark.parametrize(
    ("name", "template", "description", "param"),
    [
        ("Support", "t", "", "name"),
        ("-support", "t", "", "name"),
        ("a#b", "t", "", "name"),
        ("a" * 65, "t", "", "name"),
        ("", "t", "", "name"),
        ("p", "", "", "template"),
        ("p", " \n ", "", "template"),
        ("p", "é" * (16 * 1024 + 1), "", "template"),  # 32 KiB + 2 bytes in UTF-8
        ("p", "t", "d" * 1001, "description"),
    ],
)
def test_bad_names_templates_and_descriptions_are_refused(
    store: PromptStore, name: str, template: str, description: str, param: str
) -> None:
    with pytest.raises(InvalidPromptError) as raised:
        store.create("acme", name, template, description=description)
    assert raised.value.param == param
    assert store.list("acme") == []


def test_a_template_of_exactly_32_kib_is_accepted(store: PromptStore) -> None:
    assert store.create("acme", "a" * 64, "x" * 32 * 1024).version == 1


def test_the_declared_variables_are_stored_with_the_version(store: PromptStore) -> None:
    variables = [
        PromptVariable(name="product", description="what we support"),
        PromptVariable(name="tone", default="kind"),
    ]
    created = store.create("acme", "p", "{{ product }}, {{ tone }}", variables=variables)
    store.create("acme", "p", "no variables")

    assert store.get("acme", "p", 1).variables == variables == created.variables
    assert store.get("acme", "p", 1).variables[1].required is False
    assert store.get("acme", "p").variables == []


def test_a_version_stored_before_variables_existed_reads_as_declaring_none(store: PromptStore, table: Any) -> None:
    table.put_item(
        Item={
            "tenant": "acme",
            "prompt_version": "old#000001",
            "name": "old",
            "version": 1,
            "template": "Be brief.\n{sources}",
            "created_at": "2025-01-01T00:00:00Z",
        }
    )

    assert (store.get("acme", "old").variables, store.get("acme", "old").labels) == ([], [])


@pytest.mark.parametrize(
    ("template", "variables", "param", "named"),
    [
        ("{{ a }} {{ b }}", ["a"], "template", "'b'"),
        ("{{ a }}", ["a", "b"], "variables", "'b'"),
        ("{{ a }}", ["a", "a"], "variables", "'a' is declared twice"),
        ("{{ a }}", ["a", "1a"], "variables", "'1a' is not a variable name"),
        ("{{ a }", ["a"], "template", "line 1"),
    ],
)
def test_a_template_and_variables_that_do_not_match_are_refused(
    store: PromptStore, template: str, variables: list[str], param: str, named: str
) -> None:
    with pytest.raises(InvalidPromptError, match=named) as raised:
        store.create("acme", "p", template, variables=[PromptVariable(name=name) for name in variables])
    assert raised.value.param == param
    assert store.list("acme") == []


def test_bad_labels_on_create_are_refused_before_anything_is_written(store: PromptStore) -> None:
    with pytest.raises(InvalidPromptError) as raised:
        store.create("acme", "p", "t", labels=["production", "Not A Label"])
    assert raised.value.param == "labels"
    assert store.list("acme") == []
