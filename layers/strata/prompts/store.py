"""Named prompt templates per tenant, versioned and labelled, in the prompts table.

One item per version: partition ``tenant``, sort ``prompt_version`` = ``{name}#{version:06d}``.
Zero-padding makes the string order the numeric order, so a name's latest version is one Query
(``begins_with(name#)``, descending, limit 1). A new version is a conditional put on its key:
when two writers race for version n+1 one of them fails the condition, reads again and takes n+2.

One item per label, in the same partition: sort ``{name}@{label}``, pointing at a version. Names
never contain '#' or '@', so ``begins_with(name#)`` reads only versions and ``begins_with(name@)``
only labels. A label item also keeps the ``created_at`` of the version it points at: a deleted
name can be created again from version 1, and a cached version 1 of the old prompt must not be
served for the new one.

``resolve`` is the chat path's read and is cached in the process: versions (immutable) in a
bounded LRU, and what a label (or a request naming neither version nor label) points at for
``label_ttl_s`` seconds. A label moved elsewhere therefore takes effect on every replica within
``label_ttl_s``; this store's own writes take effect on its own cache at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from boto3.dynamodb.conditions import Key

from strata import aws
from strata.config import Settings
from strata.prompts.rendering import check_template
from strata.prompts.types import (
    DEFAULT_PROMPT_NAME,
    MAX_VERSION,
    PRODUCTION_LABEL,
    InvalidPromptError,
    PromptConflictError,
    PromptLabel,
    PromptNotFoundError,
    PromptVariable,
    PromptVersion,
    label_key,
    label_prefix,
    name_prefix,
    sort_key,
    validate_description,
    validate_label,
    validate_labels,
    validate_prompt_name,
    validate_template,
    validate_variables,
)

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 8
DEFAULT_LABEL_TTL_S = 10.0
DEFAULT_CACHE_SIZE = 1024

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_MISSING: Any = object()


class _Cache(Generic[K, V]):
    """A bounded map, least recently used out first, whose entries expire after ``ttl_s`` (never
    when None). Thread-safe: the chat function serves concurrent requests in threads."""

    def __init__(self, size: int, ttl_s: float | None, clock: Callable[[], float]) -> None:
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._size = size
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: K) -> V:
        """The value, or ``_MISSING``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return _MISSING
            if self._ttl_s is not None and self._clock() >= entry[0]:
                del self._entries[key]
                return _MISSING
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: K, value: V) -> None:
        expires = self._clock() + self._ttl_s if self._ttl_s is not None else 0.0
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def drop(self, matches: Callable[[K], bool]) -> None:
        with self._lock:
            for key in [key for key in self._entries if matches(key)]:
                del self._entries[key]


@dataclass(frozen=True, slots=True)
class _Pointer:
    """Which version a label (or "production, else latest") resolves to."""

    version: int
    created_at: datetime  # the version's, to tell it from a namesake created after a delete


class PromptStore:
    """Takes a boto3 DynamoDB Table (the prompts table).

    ``label_ttl_s``: how long ``resolve`` trusts what it read about a label (and about a name's
    latest version, and a tenant's lack of a default prompt); a label moved by another process
    takes effect here within that time. ``clock`` is monotonic seconds (injectable for tests).

    Examples
    --------
    >>> store = PromptStore(table)  # doctest: +SKIP
    >>> store.create("acme", "support", "Answer politely about {{ product }}.",
    ...              variables=[PromptVariable(name="product")], labels=["production"]).version  # doctest: +SKIP
    1
    >>> store.resolve("acme", "support").labels  # doctest: +SKIP
    []
    """

    def __init__(
        self,
        table: Any,
        *,
        attempts: int = DEFAULT_ATTEMPTS,
        sleep: Callable[[float], None] = time.sleep,
        label_ttl_s: float = DEFAULT_LABEL_TTL_S,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._table = table
        self._attempts = attempts
        self._sleep = sleep
        self._versions: _Cache[tuple[str, str, int], PromptVersion] = _Cache(cache_size, None, clock)
        self._pointers: _Cache[tuple[str, str, str | None], _Pointer | None] = _Cache(cache_size, label_ttl_s, clock)

    def create(
        self,
        tenant: str,
        name: str,
        template: str,
        *,
        description: str = "",
        variables: Sequence[PromptVariable] = (),
        labels: Sequence[str] = (),
        created_by: str | None = None,
    ) -> PromptVersion:
        """Write version n+1 of ``name`` (1 for a new name), point ``labels`` at it, return it.

        The template must use exactly the declared ``variables`` (see ``check_template``).
        """
        validate_prompt_name(name)
        validate_template(template)
        validate_description(description)
        declared = validate_variables(variables)
        label_names = validate_labels(labels)
        check_template(template, declared)
        for attempt in range(self._attempts):
            latest = self._latest(tenant, name)
            version = 1 if latest is None else latest.version + 1
            if version > MAX_VERSION:
                raise PromptConflictError(f"prompt {name!r} has {MAX_VERSION} versions, the most it can have")
            prompt = PromptVersion(
                tenant=tenant,
                name=name,
                version=version,
                template=template,
                description=description,
                variables=declared,
                created_at=datetime.now(UTC),
                created_by=created_by,
            )
            try:
                self._table.put_item(Item=_item(prompt), ConditionExpression="attribute_not_exists(prompt_version)")
            except self._table.meta.client.exceptions.ConditionalCheckFailedException:
                logger.info("version %d of prompt %s was taken by another writer; retrying", version, name)
                self._sleep(random.uniform(0, 0.01 * 2**attempt))  # jitter, so racing writers spread out
                continue
            for label in label_names:
                self._put_label(prompt, label, updated_by=created_by)
            self._forget(tenant, name)
            return prompt.model_copy(update={"labels": label_names})
        raise PromptConflictError(
            f"could not write a new version of prompt {name!r}: "
            f"{self._attempts} concurrent writes took the number first"
        )

    def get(self, tenant: str, name: str, version: int | None = None, *, label: str | None = None) -> PromptVersion:
        """The given version of ``name``, the one ``label`` points at, or its latest when neither
        is given; read consistently, with the labels pointing at it (the admin's read)."""
        validate_prompt_name(name)
        if version is not None and label is not None:
            raise InvalidPromptError("give a version or a label, not both", param="label")
        if label is not None:
            validate_label(label)
            item = self._get_item(tenant, label_key(name, label), consistent=True)
            if item is None:
                raise PromptNotFoundError(f"prompt {name!r} has no label {label!r}")
            version = int(item["version"])
        prompt = self._latest(tenant, name) if version is None else self._read_version(tenant, name, version)
        if prompt is None:
            which = "" if version is None else f" version {version}"
            raise PromptNotFoundError(f"no prompt {name!r}{which}")
        return _with_labels(prompt, self.labels(tenant, name))

    def list(self, tenant: str) -> list[PromptVersion]:
        """The latest version of each of the tenant's prompts, by name."""
        latest: dict[str, PromptVersion] = {}
        labels: dict[str, dict[str, int]] = {}
        # Versions come in key order, so the last one seen of each name is its latest.
        for item in self._items(KeyConditionExpression=Key("tenant").eq(tenant)):
            if "label" in item:
                labels.setdefault(item["name"], {})[item["label"]] = int(item["version"])
            else:
                prompt = _prompt(item)
                latest[prompt.name] = prompt
        return [_with_labels(latest[name], labels.get(name, {})) for name in sorted(latest)]

    def versions(self, tenant: str, name: str) -> list[PromptVersion]:
        """Every version of ``name``, oldest first, each with the labels pointing at it."""
        validate_prompt_name(name)
        found = [_prompt(item) for item in self._items(KeyConditionExpression=self._range(tenant, name_prefix(name)))]
        if not found:
            raise PromptNotFoundError(f"no prompt {name!r}")
        labels = self.labels(tenant, name)
        return [_with_labels(prompt, labels) for prompt in found]

    def labels(self, tenant: str, name: str) -> dict[str, int]:
        """Each label of ``name`` and the version it points at (empty when it has none)."""
        validate_prompt_name(name)
        return {
            item["label"]: int(item["version"])
            for item in self._items(KeyConditionExpression=self._range(tenant, label_prefix(name)), ConsistentRead=True)
        }

    def set_label(
        self, tenant: str, name: str, label: str, version: int, *, updated_by: str | None = None
    ) -> PromptLabel:
        """Point ``label`` at ``version`` (which must exist), creating or moving it.

        Moving ``production`` back to an older version is a rollback; the result's
        ``previous_version`` says where it pointed before.
        """
        validate_prompt_name(name)
        validate_label(label)
        prompt = self._read_version(tenant, name, version)
        if prompt is None:
            raise PromptNotFoundError(f"no prompt {name!r} version {version}")
        moved = self._put_label(prompt, label, updated_by=updated_by)
        self._forget(tenant, name)
        return moved

    def delete(self, tenant: str, name: str) -> int:
        """Delete every version and label of ``name``; returns how many versions there were.

        The name is then free: a prompt created under it again starts at version 1.
        """
        validate_prompt_name(name)
        versions = self._keys(tenant, name_prefix(name))
        if not versions:
            raise PromptNotFoundError(f"no prompt {name!r}")
        with self._table.batch_writer() as batch:
            for key in [*self._keys(tenant, label_prefix(name)), *versions]:
                batch.delete_item(Key=key)
        self._forget(tenant, name)
        self._versions.drop(lambda key: key[:2] == (tenant, name))
        return len(versions)

    def resolve(self, tenant: str, name: str, *, version: int | None = None, label: str | None = None) -> PromptVersion:
        """The version a chat request asks for: exactly ``version``; the one ``label`` points at;
        with neither, the ``production`` label's, or the latest version when there is none.

        Cached (see the class); reads may be eventually consistent. ``labels`` of the result is
        empty. Raises ``PromptNotFoundError`` naming the prompt, version or label that is missing.
        """
        validate_prompt_name(name)
        if version is not None and label is not None:
            raise InvalidPromptError("give a version or a label, not both", param="label")
        if version is not None:
            return self._cached_version(tenant, name, version)
        if label is not None:
            validate_label(label)
        pointer = self._pointer(tenant, name, label)
        if pointer is None:
            raise PromptNotFoundError(
                f"no prompt {name!r}" if label is None else f"prompt {name!r} has no label {label!r}"
            )
        return self._cached_version(tenant, name, pointer.version, created_at=pointer.created_at)

    def resolve_default(self, tenant: str) -> PromptVersion | None:
        """The tenant's prompt named ``default`` at its ``production`` label, or None (then the
        pipeline's built-in prompt applies). Its absence is cached like a label."""
        try:
            return self.resolve(tenant, DEFAULT_PROMPT_NAME, label=PRODUCTION_LABEL)
        except PromptNotFoundError:
            return None

    def _pointer(self, tenant: str, name: str, label: str | None) -> _Pointer | None:
        key = (tenant, name, label)
        pointer = self._pointers.get(key)
        if pointer is _MISSING:
            pointer = self._label_pointer(tenant, name, label or PRODUCTION_LABEL)
            if pointer is None and label is None:
                latest = self._latest(tenant, name, consistent=False)
                if latest is not None:
                    self._versions.put((tenant, name, latest.version), latest)
                    pointer = _Pointer(latest.version, latest.created_at)
            self._pointers.put(key, pointer)
        return pointer

    def _label_pointer(self, tenant: str, name: str, label: str) -> _Pointer | None:
        item = self._get_item(tenant, label_key(name, label), consistent=False)
        if item is None:
            return None
        return _Pointer(int(item["version"]), datetime.fromisoformat(item["version_created_at"]))

    def _cached_version(
        self, tenant: str, name: str, version: int, *, created_at: datetime | None = None
    ) -> PromptVersion:
        key = (tenant, name, version)
        prompt = self._versions.get(key)
        if prompt is _MISSING or (created_at is not None and prompt.created_at != created_at):
            prompt = self._read_version(tenant, name, version)
            # A label left pointing at a version deleted since: the version is gone for it.
            if prompt is None or (created_at is not None and prompt.created_at != created_at):
                raise PromptNotFoundError(f"no prompt {name!r} version {version}")
            self._versions.put(key, prompt)
        return prompt

    def _forget(self, tenant: str, name: str) -> None:
        """Drop what this process cached about where ``name``'s labels and latest point."""
        self._pointers.drop(lambda key: key[:2] == (tenant, name))

    def _put_label(self, prompt: PromptVersion, label: str, *, updated_by: str | None) -> PromptLabel:
        # One update: previous_version takes the value the item had before it (DynamoDB evaluates
        # the right-hand sides against the old item), so no read-then-write race.
        names = {"#n": "name", "#l": "label", "#v": "version", "#p": "previous_version", "#by": "updated_by"}
        values: dict[str, Any] = {
            ":n": prompt.name,
            ":l": label,
            ":v": prompt.version,
            ":c": prompt.created_at.isoformat(),
            ":u": datetime.now(UTC).isoformat(),
            ":none": None,
        }
        expression = (
            "SET #n = :n, #l = :l, #p = if_not_exists(#v, :none), #v = :v, version_created_at = :c, updated_at = :u"
        )
        if updated_by is None:
            expression += " REMOVE #by"
        else:
            expression += ", #by = :by"
            values[":by"] = updated_by
        item = self._table.update_item(
            Key={"tenant": prompt.tenant, "prompt_version": label_key(prompt.name, label)},
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _label(item)

    def _read_version(self, tenant: str, name: str, version: int) -> PromptVersion | None:
        if not 1 <= version <= MAX_VERSION:
            return None
        item = self._get_item(tenant, sort_key(name, version), consistent=True)
        return _prompt(item) if item else None

    def _get_item(self, tenant: str, sort: str, *, consistent: bool) -> dict[str, Any] | None:
        return self._table.get_item(Key={"tenant": tenant, "prompt_version": sort}, ConsistentRead=consistent).get(
            "Item"
        )

    def _latest(self, tenant: str, name: str, *, consistent: bool = True) -> PromptVersion | None:
        # Strongly consistent for writers: one must see the version another writer just put.
        items = self._table.query(
            KeyConditionExpression=self._range(tenant, name_prefix(name)),
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=consistent,
        ).get("Items", [])
        return _prompt(items[0]) if items else None

    @staticmethod
    def _range(tenant: str, prefix: str) -> Any:
        return Key("tenant").eq(tenant) & Key("prompt_version").begins_with(prefix)

    def _keys(self, tenant: str, prefix: str) -> list[dict[str, Any]]:
        return [
            {"tenant": tenant, "prompt_version": item["prompt_version"]}
            for item in self._items(KeyConditionExpression=self._range(tenant, prefix), ProjectionExpression="#sk")
        ]

    def _items(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """All pages of a query (the resource API has no paginators)."""
        if "ProjectionExpression" in kwargs:
            kwargs["ExpressionAttributeNames"] = {"#sk": "prompt_version"}
        while True:
            page = self._table.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _with_labels(prompt: PromptVersion, labels: dict[str, int]) -> PromptVersion:
    pointing = sorted(label for label, version in labels.items() if version == prompt.version)
    return prompt.model_copy(update={"labels": pointing})


def _item(prompt: PromptVersion) -> dict[str, Any]:
    item = prompt.model_dump(mode="json", exclude={"object", "labels"}, exclude_none=True)
    item["prompt_version"] = sort_key(prompt.name, prompt.version)
    return item


def _prompt(item: dict[str, Any]) -> PromptVersion:
    return PromptVersion.model_validate({**item, "version": int(item["version"])})


def _label(item: dict[str, Any]) -> PromptLabel:
    previous = item.get("previous_version")
    return PromptLabel.model_validate(
        {**item, "version": int(item["version"]), "previous_version": None if previous is None else int(previous)}
    )


def build_prompt_store(settings: Settings) -> PromptStore:
    return PromptStore(aws.resource("dynamodb", settings).Table(settings.prompts_table))
