"""Named prompt templates per tenant, versioned, in the prompts table.

One item per version: partition ``tenant``, sort ``prompt_version`` = ``{name}#{version:06d}``.
Zero-padding makes the string order the numeric order, so a name's latest version is one Query
(``begins_with(name#)``, descending, limit 1). A new version is a conditional put on its key:
when two writers race for version n+1 one of them fails the condition, reads again and takes n+2.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Key

from strata import aws
from strata.config import Settings
from strata.prompts.types import (
    MAX_VERSION,
    PromptConflictError,
    PromptNotFoundError,
    PromptVersion,
    name_prefix,
    sort_key,
    validate_description,
    validate_prompt_name,
    validate_template,
)

logger = logging.getLogger(__name__)

DEFAULT_ATTEMPTS = 8


class PromptStore:
    """Takes a boto3 DynamoDB Table (the prompts table).

    Examples
    --------
    >>> store = PromptStore(table)  # doctest: +SKIP
    >>> store.create("acme", "support", "Answer politely.\\n{sources}").version  # doctest: +SKIP
    1
    """

    def __init__(
        self, table: Any, *, attempts: int = DEFAULT_ATTEMPTS, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._table = table
        self._attempts = attempts
        self._sleep = sleep

    def create(
        self, tenant: str, name: str, template: str, *, description: str = "", created_by: str | None = None
    ) -> PromptVersion:
        """Write version n+1 of ``name`` (1 for a new name) and return it."""
        validate_prompt_name(name)
        validate_template(template)
        validate_description(description)
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
                created_at=datetime.now(UTC),
                created_by=created_by,
            )
            try:
                self._table.put_item(Item=_item(prompt), ConditionExpression="attribute_not_exists(prompt_version)")
            except self._table.meta.client.exceptions.ConditionalCheckFailedException:
                logger.info("version %d of prompt %s was taken by another writer; retrying", version, name)
                self._sleep(random.uniform(0, 0.01 * 2**attempt))  # jitter, so racing writers spread out
                continue
            return prompt
        raise PromptConflictError(
            f"could not write a new version of prompt {name!r}: "
            f"{self._attempts} concurrent writes took the number first"
        )

    def get(self, tenant: str, name: str, version: int | None = None) -> PromptVersion:
        """The given version of ``name``, or its latest when ``version`` is None."""
        validate_prompt_name(name)
        if version is None:
            prompt = self._latest(tenant, name)
        elif 1 <= version <= MAX_VERSION:
            item = self._table.get_item(Key={"tenant": tenant, "prompt_version": sort_key(name, version)}).get("Item")
            prompt = _prompt(item) if item else None
        else:
            prompt = None
        if prompt is None:
            which = "" if version is None else f" version {version}"
            raise PromptNotFoundError(f"no prompt {name!r}{which}")
        return prompt

    def list(self, tenant: str) -> list[PromptVersion]:
        """The latest version of each of the tenant's prompts, by name."""
        latest: dict[str, PromptVersion] = {}
        # Versions come in key order, so the last one seen of each name is its latest.
        for prompt in self._query(KeyConditionExpression=Key("tenant").eq(tenant)):
            latest[prompt.name] = prompt
        return sorted(latest.values(), key=lambda prompt: prompt.name)

    def versions(self, tenant: str, name: str) -> list[PromptVersion]:
        """Every version of ``name``, oldest first."""
        validate_prompt_name(name)
        found = list(self._query(KeyConditionExpression=self._range(tenant, name)))
        if not found:
            raise PromptNotFoundError(f"no prompt {name!r}")
        return found

    def delete(self, tenant: str, name: str) -> int:
        """Delete every version of ``name``; returns how many there were.

        The name is then free: a prompt created under it again starts at version 1.
        """
        validate_prompt_name(name)
        keys = [
            {"tenant": tenant, "prompt_version": item["prompt_version"]}
            for item in self._items(KeyConditionExpression=self._range(tenant, name), ProjectionExpression="#sk")
        ]
        if not keys:
            raise PromptNotFoundError(f"no prompt {name!r}")
        with self._table.batch_writer() as batch:
            for key in keys:
                batch.delete_item(Key=key)
        return len(keys)

    def _latest(self, tenant: str, name: str) -> PromptVersion | None:
        # Strongly consistent: a writer must see the version another writer just put.
        items = self._table.query(
            KeyConditionExpression=self._range(tenant, name), ScanIndexForward=False, Limit=1, ConsistentRead=True
        ).get("Items", [])
        return _prompt(items[0]) if items else None

    @staticmethod
    def _range(tenant: str, name: str) -> Any:
        return Key("tenant").eq(tenant) & Key("prompt_version").begins_with(name_prefix(name))

    def _query(self, **kwargs: Any) -> Iterator[PromptVersion]:
        return (_prompt(item) for item in self._items(**kwargs))

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


def _item(prompt: PromptVersion) -> dict[str, Any]:
    item = prompt.model_dump(mode="json", exclude={"object"}, exclude_none=True)
    item["prompt_version"] = sort_key(prompt.name, prompt.version)
    return item


def _prompt(item: dict[str, Any]) -> PromptVersion:
    return PromptVersion.model_validate({**item, "version": int(item["version"])})


def build_prompt_store(settings: Settings) -> PromptStore:
    return PromptStore(aws.resource("dynamodb", settings).Table(settings.prompts_table))
