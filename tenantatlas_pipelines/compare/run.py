"""Load compare sides from the store and run a compare (the CLI and the fleet asset call these).

Which snapshot: the given id (it must be the tenant's and of the selection), else the tenant's latest
succeeded snapshot of the selection; a tenant without one is SNAPSHOT_NOT_FOUND, saying how to take one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import psycopg

from ..errors import ErrorCode, TenantAtlasError
from ..store.fleet_alignment import AlignmentRecord, replace_alignment
from ..store.scope import tenant_scope
from ..store.selections import Selection, get_selection
from ..store.snapshot_objects import read_objects
from ..store.snapshot_references import read_references
from ..store.snapshot_runs import get_snapshot, latest_succeeded_snapshot
from ..store.tenants import Tenant, get_tenant
from .alignment import Alignment, alignment_of
from .canonical import identity_rewriter, initial_domain, object_label
from .engine import CompareResult, Side, SideObject, compare_sides
from .model import PlanStep


def pick_snapshot(conn: psycopg.Connection, tenant: Tenant, selection: Selection,
                  snapshot_id: int | None = None) -> int:
    """The snapshot id to compare for a tenant (see the module docstring)."""
    scope = tenant_scope(conn, tenant.tenant_id)
    if snapshot_id is not None:
        run = get_snapshot(scope, snapshot_id)
        if run.selection_hash != selection.selection_hash:
            raise TenantAtlasError(
                ErrorCode.SNAPSHOT_NOT_FOUND,
                f"snapshot {snapshot_id} of tenant {tenant.key} is of selection "
                f"{run.selection_name!r} (another definition), not {selection.name!r}",
            )
        return run.id
    run = latest_succeeded_snapshot(scope, selection.selection_hash)
    if run is None:
        raise TenantAtlasError(
            ErrorCode.SNAPSHOT_NOT_FOUND,
            f"tenant {tenant.key} has no succeeded snapshot of selection {selection.name!r}; take one "
            f"with `tenantatlas snapshot --tenant {tenant.key} --selection {selection.name}`",
        )
    return run.id


def load_side(conn: psycopg.Connection, tenant: Tenant, snapshot_id: int,
              domains: tuple[str, ...] = ()) -> Side:
    """One tenant's snapshot as a compare side, read in the tenant's scope (see `read_side`)."""
    scope = tenant_scope(conn, tenant.tenant_id)
    run = get_snapshot(scope, snapshot_id)
    side = read_side(scope.conn, tenant.tenant_id, tenant.key, snapshot_id, run.status, domains)
    conn.commit()
    return side


def read_side(conn: psycopg.Connection, tenant_id: str, tenant_key: str, snapshot_id: int, status: str,
              domains: tuple[str, ...] = ()) -> Side:
    """A snapshot as a compare side: normal forms with the tenant's id, its domains
    (`<key>.onmicrosoft.com` and `domains`) and the ids of its other objects rewritten as they are
    read (compare/canonical.py), and the snapshot's references. On any connection that may read the
    tenant's rows (its scope, or the UI's read-only analyst session): the CLI, the fleet asset and the
    Compare page build their sides here, so they cannot disagree."""
    refs = read_references(conn, tenant_id, snapshot_id)
    # The JSON texts first (parsed once, after rewriting): the labels need every object's name. Ids that
    # are references (an assignment filter is also an object) stay for the reference canonicaliser.
    listed = read_objects(conn, tenant_id, snapshot_id, names=False, parse=str)
    referenced = {r.ref_id for r in refs}
    labels = {o.external_id: object_label(o.policy_type, o.display_name) for o in listed
              if o.external_id not in referenced}
    rewrite = identity_rewriter(tenant_id, (initial_domain(tenant_key), *domains), labels)
    objects = [
        SideObject(o.policy_type, o.external_id, o.display_name, json.loads(rewrite(str(o.content))))
        for o in listed
    ]
    return Side(tenant_key, tenant_id, snapshot_id, objects, refs, status)


@dataclass(frozen=True)
class CompareRequest:
    source: str
    target: str
    selection: str
    source_snapshot: int | None = None
    target_snapshot: int | None = None


def compare_tenants(conn: psycopg.Connection, request: CompareRequest) -> CompareResult:
    """Resolve both tenants, the selection and the snapshots, then compare (read-only)."""
    selection = get_selection(conn, request.selection)
    sides = []
    for key, snapshot_id in ((request.source, request.source_snapshot),
                             (request.target, request.target_snapshot)):
        tenant = get_tenant(conn, key)
        sides.append(load_side(conn, tenant, pick_snapshot(conn, tenant, selection, snapshot_id)))
    return compare_sides(sides[0], sides[1])


def compare_document(
    result: CompareResult, selection: str, plan: list[PlanStep] | None
) -> dict[str, Any]:
    """The JSON object `tenantatlas compare --json` prints (field names are a contract)."""
    doc: dict[str, Any] = {
        "selection": selection,
        "source": result.source.summary(),
        "target": result.target.summary(),
        "counts": result.counts(),
        "items": [i.as_dict() for i in result.items],
    }
    if plan is not None:
        doc["plan"] = [s.as_dict() for s in plan]
    return doc




# --- fleet alignment ---------------------------------------------------------------------------------
GOLDEN_TENANT_ENV = "TENANTATLAS_GOLDEN_TENANT"
GOLDEN_SELECTION_ENV = "TENANTATLAS_GOLDEN_SELECTION"
DEFAULT_GOLDEN_SELECTION = "all"


@dataclass(frozen=True)
class GoldenConfig:
    """The operator's designation: which tenant is the standard, for which named selection."""

    tenant: str
    selection: str = DEFAULT_GOLDEN_SELECTION

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> GoldenConfig | None:
        tenant = environ.get(GOLDEN_TENANT_ENV, "").strip()
        if not tenant:
            return None
        return cls(tenant, environ.get(GOLDEN_SELECTION_ENV, "").strip() or DEFAULT_GOLDEN_SELECTION)


def require_golden(config: GoldenConfig | None) -> GoldenConfig:
    if config is None or not config.tenant:
        raise TenantAtlasError(
            ErrorCode.CONFIG_INVALID,
            f"no golden tenant configured: set {GOLDEN_TENANT_ENV} (and optionally {GOLDEN_SELECTION_ENV}, "
            f"default {DEFAULT_GOLDEN_SELECTION!r}) or the fleet_golden resource's config",
        )
    return config


def load_golden(conn: psycopg.Connection, config: GoldenConfig) -> tuple[Side, Selection]:
    """The golden tenant's latest succeeded snapshot of the configured selection, as a compare side."""
    selection = get_selection(conn, config.selection)
    golden = get_tenant(conn, config.tenant)
    return load_side(conn, golden, pick_snapshot(conn, golden, selection)), selection


def align_tenant(
    conn: psycopg.Connection, golden: Side, selection: Selection, tenant_key: str, *,
    dagster_run_id: str | None = None,
) -> tuple[Alignment, AlignmentRecord]:
    """Compare one tenant's latest succeeded snapshot with the golden side and store the result
    (replacing the tenant's previous alignment in one transaction); returns it with what was compared."""
    tenant = get_tenant(conn, tenant_key)
    side = load_side(conn, tenant, pick_snapshot(conn, tenant, selection))
    alignment = alignment_of(compare_sides(golden, side))
    record = AlignmentRecord(golden.tenant_id, selection.name, selection.selection_hash,
                             int(side.snapshot_id or 0), int(golden.snapshot_id or 0))
    replace_alignment(tenant_scope(conn, tenant.tenant_id), record, alignment,
                      dagster_run_id=dagster_run_id)
    return alignment, record
