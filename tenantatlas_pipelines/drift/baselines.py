"""Pinning a baseline: which snapshot may be one, and the `baseline set/show/clear` operations.

Only a succeeded snapshot of the same selection lineage may be pinned: a partial one did not read every
type, so everything it missed would later read as `added`.
"""

from __future__ import annotations

from ..errors import ErrorCode, TenantAtlasError
from ..store.drift_baselines import Baseline, clear_baseline, get_baseline, pin_baseline
from ..store.scope import TenantScope
from ..store.selections import Selection
from ..store.snapshot_runs import latest_succeeded_snapshot
from .compute import usable_baseline


def set_baseline(
    scope: TenantScope, selection: Selection, snapshot_id: int | None, pinned_by: str
) -> Baseline:
    """Pin `snapshot_id` (default: the latest succeeded snapshot) as the selection's baseline."""
    if snapshot_id is None:
        latest = latest_succeeded_snapshot(scope, selection.selection_hash)
        if latest is None:
            raise TenantAtlasError(
                ErrorCode.NO_SNAPSHOT,
                f"selection {selection.name!r} of tenant {scope.tenant_id} has no succeeded snapshot to pin",
            )
        snapshot_id = latest.id
    run = usable_baseline(scope, selection, snapshot_id, ("succeeded",))
    return pin_baseline(scope, selection.selection_hash, selection.name, run.id, pinned_by)


def show_baseline(scope: TenantScope, selection: Selection) -> Baseline | None:
    return get_baseline(scope, selection.selection_hash)


def unpin_baseline(scope: TenantScope, selection: Selection) -> bool:
    return clear_baseline(scope, selection.selection_hash)
