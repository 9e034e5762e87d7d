"""Drift of one (tenant, selection): which two snapshots, read them, derive (the one path the CLI, the
asset and the benchmark all take).

- current: the latest succeeded or partial snapshot of the selection lineage (a partial one still
  tells what it read; its unread types come out `low`);
- baseline: `pinned` (the operator's pin), else `previous` (the latest succeeded snapshot before the
  current one: a change feed), or `explicit` (a snapshot id of the same lineage, succeeded or partial).
Reads: the candidate ids (one statement: current, pin, previous), two ledger rows, the active
acceptances and one join of the two version lists that returns only the objects whose version differs
(store.snapshot_objects.version_pairs); a snapshot's references only when a change needs a group or
filter name from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..errors import ErrorCode, TenantAtlasError
from ..snapshots import Reference, ReferenceIndex, RefKind, snapshot_key_from_env
from ..store.drift_acceptances import active_acceptances
from ..store.drift_baselines import drift_candidates
from ..store.scope import TenantScope
from ..store.selections import Selection
from ..store.snapshot_objects import version_pairs
from ..store.snapshot_references import references_of_snapshot
from ..store.snapshot_runs import SnapshotRun, get_snapshot
from .derive import derive_items
from .model import BaselineKind, DriftReport

CURRENT_STATUSES = ("succeeded", "partial")


class LazyReferences(ReferenceIndex):
    """A snapshot's references, read on the first lookup: most drift has no assignment change and
    never needs a name, and a change read only against the current snapshot's names costs one read."""

    def __init__(self, load: Callable[[], Iterable[Reference]]) -> None:
        self._load: Callable[[], Iterable[Reference]] | None = load
        super().__init__(())

    def get(self, kind: RefKind, ref_id: str) -> Reference | None:
        if self._load is not None:
            self._by_key = {(r.kind, r.ref_id): r for r in self._load()}
            self._load = None
        return super().get(kind, ref_id)


@dataclass(frozen=True)
class Comparison:
    baseline: SnapshotRun
    current: SnapshotRun
    kind: BaselineKind


def _no_snapshot(scope: TenantScope, selection: Selection) -> TenantAtlasError:
    return TenantAtlasError(
        ErrorCode.NO_SNAPSHOT,
        f"selection {selection.name!r} of tenant {scope.tenant_id} has no succeeded snapshot yet: "
        "nothing to compare",
    )


def usable_baseline(
    scope: TenantScope, selection: Selection, snapshot_id: int, statuses: tuple[str, ...]
) -> SnapshotRun:
    """A snapshot that may serve as baseline: same lineage, one of `statuses`; else BASELINE_NOT_USABLE."""
    run = get_snapshot(scope, snapshot_id)
    if run.selection_hash != selection.selection_hash:
        raise TenantAtlasError(
            ErrorCode.BASELINE_NOT_USABLE,
            f"snapshot {snapshot_id} is of another selection "
            f"({run.selection_name or run.selection_hash[:12]}), not {selection.name!r}",
        )
    if run.status not in statuses:
        raise TenantAtlasError(
            ErrorCode.BASELINE_NOT_USABLE,
            f"snapshot {snapshot_id} is {run.status}; a baseline must be {' or '.join(statuses)}",
        )
    return run


def choose_snapshots(scope: TenantScope, selection: Selection, against: str | None = None) -> Comparison:
    """Baseline and current for `against`: None (pinned, else previous), "baseline", "previous" or an id."""
    ids = drift_candidates(scope, selection.selection_hash)
    if ids.current_id is None:
        raise _no_snapshot(scope, selection)
    current = get_snapshot(scope, ids.current_id)
    if against not in (None, "baseline", "previous"):
        if not str(against).isdigit():
            raise TenantAtlasError(
                ErrorCode.BASELINE_NOT_USABLE,
                f"--against takes baseline, previous or a snapshot id, not {against!r}",
            )
        explicit = usable_baseline(scope, selection, int(str(against)), CURRENT_STATUSES)
        return Comparison(explicit, current, "explicit")
    if against != "previous":
        if ids.pinned_id is not None:
            return Comparison(get_snapshot(scope, ids.pinned_id), current, "pinned")
        if against == "baseline":
            raise TenantAtlasError(
                ErrorCode.NO_BASELINE_SNAPSHOT,
                f"no baseline is pinned for selection {selection.name!r}; pin one with "
                "`tenantatlas baseline set` or compare against the previous snapshot",
            )
    if ids.previous_id is None:
        raise TenantAtlasError(
            ErrorCode.NO_BASELINE_SNAPSHOT,
            f"snapshot {current.id} is the first succeeded snapshot of selection {selection.name!r}: "
            "there is no earlier one to compare with, and no baseline is pinned",
        )
    return Comparison(get_snapshot(scope, ids.previous_id), current, "previous")


def _unclean(run: SnapshotRun, policy_type: str, role: str) -> str | None:
    if run.read_cleanly(policy_type):
        return None
    outcome = run.type_outcome(policy_type)
    if outcome is None or outcome.status != "succeeded":
        code = f" ({outcome.error_code})" if outcome and outcome.error_code else ""
        return f"{role} snapshot {run.id} could not read {policy_type} completely{code}"
    return f"{role} snapshot {run.id} skipped {outcome.items_errors} {policy_type} objects it could not read"


def type_reason(comparison: Comparison, policy_type: str) -> str | None:
    """Why a type's items are low confidence (None: both snapshots read it completely and cleanly)."""
    return _unclean(comparison.current, policy_type, "current") or _unclean(
        comparison.baseline, policy_type, "baseline"
    )


def compute_drift(
    scope: TenantScope,
    selection: Selection,
    *,
    against: str | None = None,
    compare_secrets: bool | None = None,
) -> DriftReport:
    """The drift of a (tenant, selection); NO_SNAPSHOT / NO_BASELINE_SNAPSHOT / BASELINE_NOT_USABLE /
    SNAPSHOT_NOT_FOUND when there is nothing to compare. Secrets are compared only when
    TENANTATLAS_SNAPSHOT_KEY is set (or `compare_secrets` says so)."""
    comparison = choose_snapshots(scope, selection, against)
    if compare_secrets is None:
        compare_secrets = snapshot_key_from_env() is not None
    pairs = (
        version_pairs(scope, comparison.baseline.id, comparison.current.id)
        if comparison.baseline.id != comparison.current.id
        else []
    )
    baseline_refs = LazyReferences(lambda: references_of_snapshot(scope, comparison.baseline.id))
    current_refs = LazyReferences(lambda: references_of_snapshot(scope, comparison.current.id))
    items = derive_items(
        pairs,
        type_reason=lambda t: type_reason(comparison, t),
        compare_secrets=compare_secrets,
        acceptances=active_acceptances(scope, selection.selection_hash) if pairs else (),
        baseline_refs=baseline_refs,
        current_refs=current_refs,
    )
    return DriftReport(
        tenant_id=scope.tenant_id,
        selection_name=selection.name,
        selection_hash=selection.selection_hash,
        baseline_snapshot_id=comparison.baseline.id,
        current_snapshot_id=comparison.current.id,
        baseline_kind=comparison.kind,
        items=tuple(items),
    )
