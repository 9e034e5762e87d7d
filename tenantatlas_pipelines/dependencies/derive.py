"""One partition's dependency graph: latest usable snapshot -> edges -> published (the `derive` verb).

Plain Python behind the `dependency_edges` asset (and the demo), tested without Dagster. "Usable" is
the latest `succeeded` or `partial` snapshot of the (tenant, selection): a partial snapshot's objects
were read completely per page and their edges are true; the types it could not read simply contribute
no edges (their references show `resolved = null` where objects were stored before the type failed).
With no usable snapshot the published graph is left as it was, never replaced by nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..snapshots.references import ReferenceIndex
from ..store.dependency_edges import (
    PartitionHeader,
    partition_dangling_edges,
    partition_header,
    replace_partition,
)
from ..store.scope import tenant_scope
from ..store.selections import get_selection
from ..store.snapshot_objects import objects_of_snapshot
from ..store.snapshot_references import references_of_snapshot
from ..store.snapshot_runs import latest_snapshot
from ..store.tenants import get_tenant
from .edges import SnapshotEdges, edges_of_snapshot

if TYPE_CHECKING:
    from ..db import Database
    from ..store.scope import TenantScope

USABLE = ("succeeded", "partial")


@dataclass(frozen=True)
class DerivedPartition:
    """What a derivation published (`derived` is None when there was no usable snapshot)."""

    tenant_key: str
    selection_name: str
    header: PartitionHeader | None
    derived: SnapshotEdges | None


def derive_snapshot(scope: TenantScope, snapshot_id: int) -> SnapshotEdges:
    """The edges of one stored snapshot (its id-only documents, named from its own references)."""
    refs = ReferenceIndex(references_of_snapshot(scope, snapshot_id))
    objects = objects_of_snapshot(scope, snapshot_id, names=False)
    return edges_of_snapshot(
        ((o.policy_type, o.external_id, o.display_name, o.content or {}) for o in objects), refs
    )


def derive_partition(
    db: Database, tenant_key: str, selection_name: str, *, dagster_run_id: str | None = None
) -> DerivedPartition:
    """Derive and publish the edges of a (tenant, selection) from its latest usable snapshot."""
    with db.connect() as conn:
        tenant = get_tenant(conn, tenant_key)
        selection = get_selection(conn, selection_name)
        scope = tenant_scope(conn, tenant.tenant_id)
        snapshot = latest_snapshot(scope, selection.selection_hash, statuses=USABLE)
        if snapshot is None:
            return DerivedPartition(tenant.key, selection.name,
                                    partition_header(scope, selection.selection_hash), None)
        derived = derive_snapshot(scope, snapshot.id)
        header = replace_partition(
            scope, selection_hash=selection.selection_hash, selection_name=selection.name,
            snapshot_id=snapshot.id, snapshot_status=snapshot.status, derived=derived,
            dagster_run_id=dagster_run_id,
        )
    return DerivedPartition(tenant.key, selection.name, header, derived)


def partition_dangling(
    db: Database, tenant_key: str, selection_name: str
) -> tuple[PartitionHeader | None, list[dict[str, object]]]:
    """A published partition's header and its dangling edges (what the asset check reports)."""
    with db.connect() as conn:
        scope = tenant_scope(conn, get_tenant(conn, tenant_key).tenant_id)
        selection_hash = get_selection(conn, selection_name).selection_hash
        return partition_header(scope, selection_hash), partition_dangling_edges(scope, selection_hash)
