"""Labels and the chat path's resolution, against moto's DynamoDB; the cache with a fake clock."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from strata.prompts import InvalidPromptError, PromptNotFoundError, PromptStore, PromptVariable, render_prompt


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(table: Any, clock: Clock) -> PromptStore:
    return PromptStore(table, sleep=lambda _: None, clock=clock)


@pytest.fixture
def replica(table: Any, clock: Clock) -> PromptStore:
    """Another process's store over the same table: its cache learns of our writes only by TTL."""
    return PromptStore(table, sleep=lambda _: None, clock=clock, label_ttl_s=10)


def three_versions(store: PromptStore, tenant: str = "acme", name: str = "support") -> None:
    for n in (1, 2, 3):
        store.create(tenant, name, f"template {n}")


def test_a_label_resolves_to_its_version_and_moving_it_back_is_a_rollback(store: PromptStore) -> None:
    three_versions(store)

    moved = store.set_label("acme", "support", "production", 2, updated_by="k1")
    assert (moved.version, moved.previous_version, moved.updated_by) == (2, None, "k1")
    assert store.resolve("acme", "support").version == 2
    assert store.resolve("acme", "support", label="production").template == "template 2"

    rolled_back = store.set_label("acme", "support", "production", 1)
    assert (rolled_back.version, rolled_back.previous_version) == (1, 2)
    assert store.resolve("acme", "support").version == 1  # our own write: no wait for the TTL
    assert store.labels("acme", "support") == {"production": 1}


def test_without_a_production_label_a_name_resolves_to_its_latest_version(store: PromptStore) -> None:
    three_versions(store)
    assert store.resolve("acme", "support").version == 3

    store.set_label("acme", "support", "staging", 1)
    assert store.resolve("acme", "support").version == 3
    assert store.resolve("acme", "support", label="staging").version == 1


def test_a_pinned_version_is_exactly_that_version_whatever_the_labels(store: PromptStore) -> None:
    three_versions(store)
    store.set_label("acme", "support", "production", 3)

    assert store.resolve("acme", "support", version=1).template == "template 1"
    assert store.get("acme", "support", 2).template == "template 2"


def test_unknown_labels_versions_and_names_are_not_found_naming_what_is_missing(store: PromptStore) -> None:
    three_versions(store)

    with pytest.raises(PromptNotFoundError, match="no label 'canary'"):
        store.resolve("acme", "support", label="canary")
    with pytest.raises(PromptNotFoundError, match="version 4"):
        store.resolve("acme", "support", version=4)
    with pytest.raises(PromptNotFoundError, match="'other'"):
        store.resolve("acme", "other")
    with pytest.raises(PromptNotFoundError, match="version 9"):
        store.set_label("acme", "support", "production", 9)
    with pytest.raises(PromptNotFoundError, match="no label 'canary'"):
        store.get("acme", "support", label="canary")
    assert store.labels("acme", "support") == {}


def test_a_version_and_a_label_together_or_a_bad_label_are_refused(store: PromptStore) -> None:
    three_versions(store)

    for call in (
        lambda: store.resolve("acme", "support", version=1, label="production"),
        lambda: store.get("acme", "support", 1, label="production"),
        lambda: store.set_label("acme", "support", "Prod!", 1),
        lambda: store.resolve("acme", "support", label="a" * 33),
    ):
        with pytest.raises(InvalidPromptError) as raised:
            call()
        assert raised.value.param == "label"


def test_another_processes_label_move_takes_effect_within_the_ttl(
    store: PromptStore, replica: PromptStore, clock: Clock
) -> None:
    three_versions(store)
    store.set_label("acme", "support", "production", 2)
    assert replica.resolve("acme", "support").version == 2
    assert replica.resolve("acme", "support", label="production").version == 2

    store.set_label("acme", "support", "production", 1)
    clock.now += 9.9
    assert replica.resolve("acme", "support").version == 2  # still cached
    clock.now += 0.2
    assert replica.resolve("acme", "support").version == 1
    assert replica.resolve("acme", "support", label="production").version == 1


def test_a_new_latest_version_reaches_another_process_within_the_ttl(
    store: PromptStore, replica: PromptStore, clock: Clock
) -> None:
    store.create("acme", "support", "v1")
    assert replica.resolve("acme", "support").version == 1

    store.create("acme", "support", "v2")
    assert replica.resolve("acme", "support").version == 1
    clock.now += 10
    assert replica.resolve("acme", "support").version == 2


def test_the_default_prompt_is_the_production_label_of_the_prompt_named_default(
    store: PromptStore, replica: PromptStore, clock: Clock
) -> None:
    assert replica.resolve_default("acme") is None
    store.create("acme", "default", "unlabelled")
    clock.now += 10
    assert replica.resolve_default("acme") is None  # a default prompt needs its production label

    store.set_label("acme", "default", "production", 1)
    clock.now += 5
    assert replica.resolve_default("acme") is None  # "none" is cached for the TTL too
    clock.now += 5
    default = replica.resolve_default("acme")
    assert default is not None and (default.name, default.template) == ("default", "unlabelled")
    assert store.resolve_default("globex") is None


def test_a_name_deleted_and_created_again_is_not_served_from_a_cached_version(
    store: PromptStore, replica: PromptStore, clock: Clock
) -> None:
    store.create("acme", "support", "the old one", labels=["production"])
    assert replica.resolve("acme", "support").template == "the old one"

    store.delete("acme", "support")
    store.create("acme", "support", "the new one", labels=["production"])  # version 1 again
    clock.now += 10

    assert replica.resolve("acme", "support").template == "the new one"
    assert replica.resolve("acme", "support", label="production").template == "the new one"


def test_create_can_label_the_new_version(store: PromptStore) -> None:
    store.create("acme", "support", "v1", labels=["production"])

    second = store.create("acme", "support", "v2", labels=["staging", "canary", "staging"])

    assert second.labels == ["canary", "staging"]
    assert store.labels("acme", "support") == {"production": 1, "staging": 2, "canary": 2}
    assert store.resolve("acme", "support").version == 1


def test_labels_are_listed_on_the_versions_they_point_at_and_never_as_versions(store: PromptStore, table: Any) -> None:
    three_versions(store)
    store.set_label("acme", "support", "production", 2)
    store.set_label("acme", "support", "staging", 3)
    store.set_label("acme", "support", "canary", 3)
    store.create("acme", "support.v2", "another name")

    assert [(p.version, p.labels) for p in store.versions("acme", "support")] == [
        (1, []),
        (2, ["production"]),
        (3, ["canary", "staging"]),
    ]
    assert [(p.name, p.version, p.labels) for p in store.list("acme")] == [
        ("support", 3, ["canary", "staging"]),
        ("support.v2", 1, []),
    ]
    assert store.get("acme", "support").labels == ["canary", "staging"]
    assert store.get("acme", "support", 2).labels == ["production"]
    assert store.get("acme", "support", label="production").version == 2
    assert len(table.scan()["Items"]) == 7  # 4 versions and 3 labels


def test_delete_removes_the_labels_too(store: PromptStore, table: Any) -> None:
    three_versions(store)
    store.set_label("acme", "support", "production", 2)
    store.create("acme", "other", "stays", labels=["production"])

    assert store.delete("acme", "support") == 3

    assert {item["prompt_version"] for item in table.scan()["Items"]} == {"other#000001", "other@production"}
    with pytest.raises(PromptNotFoundError):
        store.resolve("acme", "support", label="production")
    assert store.create("acme", "support", "again").labels == []
    assert store.labels("acme", "support") == {}


def test_another_tenant_cannot_get_list_resolve_or_label_a_prompt(store: PromptStore) -> None:
    store.create("acme", "support", "acme's", labels=["production"])
    store.create("acme", "default", "acme's default", labels=["production"])

    with pytest.raises(PromptNotFoundError):
        store.get("globex", "support")
    with pytest.raises(PromptNotFoundError):
        store.resolve("globex", "support")
    with pytest.raises(PromptNotFoundError):
        store.resolve("globex", "support", version=1)
    with pytest.raises(PromptNotFoundError):
        store.resolve("globex", "support", label="production")
    with pytest.raises(PromptNotFoundError):
        store.set_label("globex", "support", "production", 1)
    assert store.list("globex") == []
    assert store.labels("globex", "support") == {}
    assert store.resolve_default("globex") is None
    assert store.resolve("acme", "support").template == "acme's"


def test_a_resolved_prompt_renders_with_its_variables(store: PromptStore) -> None:
    store.create(
        "acme",
        "support",
        "Help with {{ product }}, {{ tone }}.",
        variables=[PromptVariable(name="product"), PromptVariable(name="tone", default="kindly")],
        labels=["production"],
    )

    assert render_prompt(store.resolve("acme", "support"), {"product": "Strata"}) == "Help with Strata, kindly."


def test_concurrent_resolves_all_get_the_labelled_version(store: PromptStore) -> None:
    three_versions(store)
    store.set_label("acme", "support", "production", 2)
    start = threading.Barrier(8)
    resolved: list[int] = []

    def resolve() -> None:
        start.wait()
        resolved.extend(store.resolve("acme", "support").version for _ in range(20))

    threads = [threading.Thread(target=resolve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert resolved == [2] * 160
