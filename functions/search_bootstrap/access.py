"""Fine-grained access control on the managed domain: two security-plugin roles on the chunk index
and the IAM roles mapped to each (``backend_roles``).

The bootstrap function's role is the domain's master user, so it may write these. Each PUT
replaces the whole role or mapping, which makes the bootstrap idempotent and makes the mapping list
exactly the roles the stack granted: a role dropped from the stack loses its access on the next
deployment.

Action groups are the security plugin's predefined ones (OpenSearch documentation, "Default action
groups"): ``read`` is ``indices:data/read*``; ``crud`` adds ``indices:data/write*`` (bulk, delete by
query); ``create_index`` and ``manage`` cover creating the index and adding fields to its mapping
(``ensure_index`` on the ingest function's cold start). ``_bulk``, ``_mget`` and ``_msearch`` also
need their cluster-level composite permission, and writing the hybrid pipeline needs
``cluster:admin/search/pipeline/put``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opensearchpy import OpenSearch

SECURITY_API = "/_plugins/_security/api"
READ_CLUSTER_PERMISSIONS = ("cluster_composite_ops_ro",)
READ_INDEX_ACTIONS = ("read",)
WRITE_CLUSTER_PERMISSIONS = (
    "cluster_composite_ops",
    "cluster:admin/search/pipeline/get",
    "cluster:admin/search/pipeline/put",
)
WRITE_INDEX_ACTIONS = ("crud", "create_index", "manage")


@dataclass(frozen=True, slots=True)
class IndexRole:
    """A security-plugin role on one index and the IAM role ARNs mapped to it."""

    name: str
    index: str
    cluster_permissions: tuple[str, ...]
    index_actions: tuple[str, ...]
    backend_roles: tuple[str, ...]

    def role_body(self) -> dict[str, Any]:
        return {
            "description": f"Strata: {self.name} (managed by the stack's search bootstrap)",
            "cluster_permissions": list(self.cluster_permissions),
            "index_permissions": [{"index_patterns": [self.index], "allowed_actions": list(self.index_actions)}],
        }

    def mapping_body(self) -> dict[str, Any]:
        return {"backend_roles": list(self.backend_roles)}


def index_roles(index: str, *, read_roles: Sequence[str], write_roles: Sequence[str]) -> tuple[IndexRole, IndexRole]:
    """The read and the write role of ``index`` (named ``<index>-read`` and ``<index>-write``)."""
    return (
        IndexRole(f"{index}-read", index, READ_CLUSTER_PERMISSIONS, READ_INDEX_ACTIONS, tuple(read_roles)),
        IndexRole(f"{index}-write", index, WRITE_CLUSTER_PERMISSIONS, WRITE_INDEX_ACTIONS, tuple(write_roles)),
    )


def apply_index_roles(client: OpenSearch, roles: Sequence[IndexRole]) -> None:
    """PUT each role, then its mapping (a mapping must name an existing role)."""
    for role in roles:
        client.transport.perform_request("PUT", f"{SECURITY_API}/roles/{role.name}", body=role.role_body())
        client.transport.perform_request("PUT", f"{SECURITY_API}/rolesmapping/{role.name}", body=role.mapping_body())
