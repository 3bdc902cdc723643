"""Values computed at synthesis, once every construct and grant exists (CDK's ``Lazy``)."""

from __future__ import annotations

from collections.abc import Callable

import jsii
from aws_cdk import IStableListProducer, IStableStringProducer, Lazy


@jsii.implements(IStableStringProducer)
class _StringProducer:
    def __init__(self, produce: Callable[[], str]) -> None:
        self._produce = produce

    def produce(self) -> str:
        return self._produce()


@jsii.implements(IStableListProducer)
class _ListProducer:
    def __init__(self, produce: Callable[[], list[str]]) -> None:
        self._produce = produce

    def produce(self) -> list[str]:
        return self._produce()


def lazy_string(produce: Callable[[], str]) -> str:
    """A token that resolves to ``produce()`` at synthesis."""
    return Lazy.string(_StringProducer(produce))


def lazy_list(produce: Callable[[], list[str]]) -> list[str]:
    """A list token that resolves to ``produce()`` at synthesis."""
    return Lazy.list(_ListProducer(produce))
