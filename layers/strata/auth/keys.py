"""API keys: a visible id and a secret, stored only as a keyed hash.

A key reads ``sk-strata-<key_id>-<secret>``. The id (12 lowercase letters and digits, never a
``-``) is the table's partition key, so a key is found with one GetItem; the secret part is
``secrets.token_urlsafe(32)``. The table keeps HMAC-SHA256(pepper, whole key) and compares it in
constant time; without the pepper a copy of the table cannot be turned back into keys.

Listing a tenant's keys is a Query on the ``by-tenant`` global secondary index (partition key
``tenant``, sort key ``created_at``); being a GSI it is eventually consistent, so a key created
a moment ago may take a moment to be listed. Everything else reads the base table consistently.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from strata import aws
from strata.auth.exceptions import InvalidCredentialsError, KeyConflictError, KeyNotFoundError
from strata.auth.pepper import load_pepper
from strata.auth.tenants import limits_from_item, limits_item
from strata.auth.types import IssuedKey, KeyRecord, Principal, validate_tenant
from strata.config import Scope
from strata.throttle.types import Limits

if TYPE_CHECKING:
    from strata.config import Settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "sk-strata-"
KEY_ID_LENGTH = 12
TENANT_INDEX = "by-tenant"

_KEY_ID_ALPHABET = string.ascii_lowercase + string.digits
_KEY_ID = re.compile(rf"[a-z0-9]{{{KEY_ID_LENGTH}}}")
# token_urlsafe(32) is 43 characters; registered keys may carry a longer secret, never a shorter one.
_KEY = re.compile(rf"{re.escape(KEY_PREFIX)}([a-z0-9]{{{KEY_ID_LENGTH}}})-([A-Za-z0-9_-]{{32,128}})")
_KNOWN_SCOPES = {scope.value: scope for scope in Scope}
_CONDITION_FAILED = "ConditionalCheckFailedException"
_CREATE_ATTEMPTS = 3


def _now() -> datetime:
    return datetime.now(UTC)


def new_key_id() -> str:
    return "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(KEY_ID_LENGTH))


def generate_secret() -> str:
    """A new, whole API key (``sk-strata-<key_id>-<secret>``); nothing is stored."""
    return f"{KEY_PREFIX}{new_key_id()}-{secrets.token_urlsafe(32)}"


def parse_api_key(value: str) -> str | None:
    """The key id of a well-formed API key, or None (old formats, JWTs, junk)."""
    match = _KEY.fullmatch(value)
    return match.group(1) if match else None


def is_key_shaped(value: str) -> bool:
    """Whether ``value`` has the shape of a current API key (says nothing of its validity)."""
    return parse_api_key(value) is not None


def hash_secret(secret: str, pepper: str) -> str:
    """HMAC-SHA256 of the whole key under the pepper, hex: the only form a key is stored in."""
    return hmac.new(pepper.encode(), secret.encode(), hashlib.sha256).hexdigest()


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes by name; an unknown name is an error naming the known ones."""
    scopes = set()
    for value in values:
        if value not in _KNOWN_SCOPES:
            raise ValueError(f"unknown scope {value!r}: use {', '.join(_KNOWN_SCOPES)}")
        scopes.add(_KNOWN_SCOPES[value])
    return frozenset(scopes)


def _iso(moment: datetime) -> str:
    # One fixed width, so created_at sorts as text in the tenant index.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"{name} must carry a time zone (got {moment.isoformat()})")
    return moment


def _record(item: dict[str, Any]) -> KeyRecord:
    def moment(name: str) -> datetime | None:
        value = item.get(name)
        return datetime.fromisoformat(value) if value else None

    return KeyRecord(
        key_id=item["key_id"],
        tenant=item["tenant"],
        name=item.get("name", ""),
        # A scope this code no longer knows grants nothing rather than failing every request.
        scopes=frozenset(_KNOWN_SCOPES[s] for s in item.get("scopes", []) if s in _KNOWN_SCOPES),
        limits=limits_from_item(item.get("limits")),
        created_at=datetime.fromisoformat(item["created_at"]),
        expires_at=moment("expires_at"),
        revoked_at=moment("revoked_at"),
    )


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == _CONDITION_FAILED


class ApiKeyStore:
    """The keys table (partition key ``key_id``). Takes a boto3 DynamoDB Table and the pepper.

    Every method but ``resolve`` is scoped to a tenant: another tenant's key is not found.
    """

    def __init__(
        self,
        table: Any,
        pepper: str,
        *,
        clock: Callable[[], datetime] = _now,
        tenant_index: str = TENANT_INDEX,
    ) -> None:
        if not pepper:
            raise ValueError("the pepper must not be empty")
        self._table = table
        self._pepper = pepper
        self._clock = clock
        self._tenant_index = tenant_index

    def create(
        self,
        tenant: str,
        *,
        name: str = "",
        scopes: Iterable[Scope] = frozenset({Scope.CHAT}),
        limits: Limits = Limits(),  # noqa: B008 - frozen model, safe to share
        expires_at: datetime | None = None,
    ) -> IssuedKey:
        """A new key for ``tenant``. The secret is in the result only: show it once."""
        for _ in range(_CREATE_ATTEMPTS):
            secret = generate_secret()
            item = self._item(secret, tenant, name=name, scopes=scopes, limits=limits, expires_at=expires_at)
            try:
                # Never overwrite: two ids colliding (36**12 of them) must not hand one key's tenant to another.
                self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(key_id)")
            except ClientError as error:
                if _condition_failed(error):
                    continue
                raise
            logger.info("API key created", extra={"tenant": tenant, "key_id": item["key_id"]})
            return IssuedKey(secret=secret, record=_record(item))
        raise KeyConflictError(f"could not find a free key id in {_CREATE_ATTEMPTS} attempts")

    def register(
        self,
        secret: str,
        tenant: str,
        *,
        name: str = "",
        scopes: Iterable[Scope] = frozenset(Scope),
        limits: Limits = Limits(),  # noqa: B008 - frozen model, safe to share
        expires_at: datetime | None = None,
    ) -> IssuedKey:
        """Make a known key valid as stated (the local stack's dev key, at every start).

        Idempotent: registering again keeps ``created_at`` and restores a revoked key. Refuses a
        key id that is already registered with another secret or for another tenant.
        """
        if parse_api_key(secret) is None:
            raise ValueError(f"not a Strata API key: expected {KEY_PREFIX}<{KEY_ID_LENGTH} a-z0-9>-<secret>")
        item = self._item(secret, tenant, name=name, scopes=scopes, limits=limits, expires_at=expires_at)
        key_id = item.pop("key_id")
        created_at = item.pop("created_at")
        names = {f"#{field}": field for field in item}
        values = {f":{field}": value for field, value in item.items()}
        sets = [f"#{field} = :{field}" for field in item] + ["#created_at = if_not_exists(#created_at, :created_at)"]
        removes = ["#revoked_at"] + ([] if expires_at else ["#expires_at"])
        try:
            response = self._table.update_item(
                Key={"key_id": key_id},
                UpdateExpression=f"SET {', '.join(sets)} REMOVE {', '.join(removes)}",
                ConditionExpression=(
                    "attribute_not_exists(key_id) OR (#tenant = :tenant AND #secret_hash = :secret_hash)"
                ),
                ExpressionAttributeNames={
                    **names,
                    "#created_at": "created_at",
                    "#revoked_at": "revoked_at",
                    "#expires_at": "expires_at",
                },
                ExpressionAttributeValues={**values, ":created_at": created_at},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _condition_failed(error):
                raise KeyConflictError(f"key id {key_id} is already registered with another secret or tenant") from None
            raise
        return IssuedKey(secret=secret, record=_record(response["Attributes"]))

    def resolve(self, secret: str) -> Principal:
        """The caller a key stands for, with its scopes and key limits (tenant limits: none here).

        Each refusal is an ``InvalidCredentialsError`` whose message is the reason for the log;
        it names the key id at most, never the secret.
        """
        key_id = parse_api_key(secret)
        if key_id is None:
            raise InvalidCredentialsError("malformed API key")
        # Consistent: a revocation must count from the moment it was written.
        item = self._table.get_item(Key={"key_id": key_id}, ConsistentRead=True).get("Item")
        if item is None:
            raise InvalidCredentialsError(f"unknown key id {key_id}")
        if not hmac.compare_digest(str(item.get("secret_hash", "")), hash_secret(secret, self._pepper)):
            raise InvalidCredentialsError(f"wrong secret for key id {key_id}")
        record = _record(item)
        if record.revoked_at is not None:
            raise InvalidCredentialsError(f"key id {key_id} was revoked at {record.revoked_at.isoformat()}")
        if record.expires_at is not None and record.expires_at <= self._clock():
            raise InvalidCredentialsError(f"key id {key_id} expired at {record.expires_at.isoformat()}")
        return Principal(tenant=record.tenant, key_id=key_id, scopes=record.scopes, key_limits=record.limits)

    def list(self, tenant: str) -> list[KeyRecord]:
        """The tenant's keys, oldest first, revoked ones included (one Query, paged)."""
        query: dict[str, Any] = {
            "IndexName": self._tenant_index,
            "KeyConditionExpression": Key("tenant").eq(validate_tenant(tenant)),
        }
        records: list[KeyRecord] = []
        while True:
            page = self._table.query(**query)
            records.extend(_record(item) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return records
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, tenant: str, key_id: str) -> KeyRecord:
        item = None
        if _KEY_ID.fullmatch(key_id):
            item = self._table.get_item(Key={"key_id": key_id}, ConsistentRead=True).get("Item")
        if item is None or item.get("tenant") != tenant:
            raise _not_found(key_id)
        return _record(item)

    def update(
        self,
        tenant: str,
        key_id: str,
        *,
        name: str | None = None,
        scopes: Iterable[Scope] | None = None,
        limits: Limits | None = None,
    ) -> KeyRecord:
        """Change what is given (``limits`` replaces the key's limits as a whole)."""
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if scopes is not None:
            changes["scopes"] = sorted(parse_scopes(scopes))
        if limits is not None:
            changes["limits"] = limits_item(limits)
        if not changes:
            return self.get(tenant, key_id)
        sets = ", ".join(f"#{field} = :{field}" for field in changes)
        values = {f":{field}": value for field, value in changes.items()}
        return self._update_owned(tenant, key_id, f"SET {sets}", {f"#{f}": f for f in changes}, values)

    def revoke(self, tenant: str, key_id: str) -> KeyRecord:
        """Revoke a key (idempotent: the first revocation's time is kept).

        Callers holding a cached authorizer policy keep access until it expires (60 s).
        """
        record = self._update_owned(
            tenant,
            key_id,
            "SET #revoked_at = if_not_exists(#revoked_at, :now)",
            {"#revoked_at": "revoked_at"},
            {":now": _iso(self._clock())},
        )
        logger.info("API key revoked", extra={"tenant": tenant, "key_id": key_id})
        return record

    def _update_owned(
        self, tenant: str, key_id: str, expression: str, names: dict[str, str], values: dict[str, Any]
    ) -> KeyRecord:
        """One conditional UpdateItem: it only applies to a key that exists and is the tenant's."""
        if not _KEY_ID.fullmatch(key_id):
            raise _not_found(key_id)
        try:
            response = self._table.update_item(
                Key={"key_id": key_id},
                UpdateExpression=expression,
                ConditionExpression="#tenant = :tenant",
                ExpressionAttributeNames={**names, "#tenant": "tenant"},
                ExpressionAttributeValues={**values, ":tenant": tenant},
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if _condition_failed(error):
                raise _not_found(key_id) from None
            raise
        return _record(response["Attributes"])

    def _item(
        self,
        secret: str,
        tenant: str,
        *,
        name: str,
        scopes: Iterable[Scope],
        limits: Limits,
        expires_at: datetime | None,
    ) -> dict[str, Any]:
        now = self._clock()
        item: dict[str, Any] = {
            "key_id": parse_api_key(secret),
            "secret_hash": hash_secret(secret, self._pepper),
            "tenant": validate_tenant(tenant),
            "name": name,
            # A list, not a string set: DynamoDB has no empty set, and a key may hold no scope.
            "scopes": sorted(parse_scopes(scopes)),
            "limits": limits_item(limits),
            "created_at": _iso(now),
        }
        if expires_at is not None:
            if _aware(expires_at, "expires_at") <= now:
                raise ValueError(f"expires_at {expires_at.isoformat()} is not in the future")
            item["expires_at"] = _iso(expires_at)
        return item


def _not_found(key_id: str) -> KeyNotFoundError:
    return KeyNotFoundError(f"no API key {key_id[:64]!r} in this tenant")


def build_key_store(settings: Settings) -> ApiKeyStore:
    """The keys table with the configured pepper (see ``load_pepper``); refuses to run without one."""
    return ApiKeyStore(aws.resource("dynamodb", settings).Table(settings.keys_table), load_pepper(settings))
