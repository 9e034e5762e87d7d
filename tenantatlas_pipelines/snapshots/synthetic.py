"""Insert a snapshot directly, without Graph: for tests and benchmarks of what builds on snapshots.

It goes through the same capture (normal form, hash) and store functions as a real snapshot run, so a
synthetic snapshot is indistinguishable in the database from a captured one. Drift, compare and
dependency tests use it to set up exact scenarios.

    sid = insert_snapshot(scope, selection, [
        SyntheticObject("deviceConfiguration", "dc-1", {"displayName": "Wi-Fi", "ssid": "corp"},
                        assignments=[group_assignment("g-1")]),
    ], references=[Reference(RefKind.GROUP, "g-1", "Sales", GroupType.SECURITY)])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..store.scope import TenantScope
from ..store.selections import Selection
from ..store.snapshot_objects import record_objects
from ..store.snapshot_references import record_references
from ..store.snapshot_runs import LEDGER
from .capture import capture_object
from .references import Reference, references_in


@dataclass(frozen=True)
class SyntheticObject:
    """A raw, Graph-shaped object (with or without `id`) and its raw Graph assignments."""

    policy_type: str
    external_id: str
    content: Mapping[str, Any]
    assignments: Sequence[Mapping[str, Any]] = field(default_factory=tuple)


def group_assignment(
    group_id: str, *, exclude: bool = False, filter_id: str | None = None, filter_mode: str = "include",
    intent: str | None = None,
) -> dict[str, Any]:
    """A raw Graph assignment to a group (or an exclusion), optionally with a filter and app intent."""
    kind = "exclusionGroupAssignmentTarget" if exclude else "groupAssignmentTarget"
    target: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{kind}", "groupId": group_id}
    if filter_id:
        target["deviceAndAppManagementAssignmentFilterId"] = filter_id
        target["deviceAndAppManagementAssignmentFilterType"] = filter_mode
    out: dict[str, Any] = {"target": target}
    if intent:
        out["intent"] = intent
    return out


def virtual_assignment(kind: str = "allDevices") -> dict[str, Any]:
    """A raw assignment to all devices (`allDevices`) or all licensed users (`allLicensedUsers`)."""
    return {"target": {"@odata.type": f"#microsoft.graph.{kind}AssignmentTarget"}}


def insert_snapshot(
    scope: TenantScope,
    selection: Selection,
    objects: Iterable[SyntheticObject],
    *,
    references: Iterable[Reference] = (),
    status: str = "succeeded",
    failed_types: Mapping[str, str] | None = None,
    key: bytes | None = None,
    dagster_run_id: str | None = None,
) -> int:
    """Store a finalised snapshot of `objects`; returns its id.

    `failed_types` maps a policy type to the error code it failed with (its objects are still stored,
    as a run stores what it read before a type failed); `status` is the run's final status. References
    the objects use but `references` does not list are stored unresolved (dangling)."""
    failed_types = dict(failed_types or {})
    refs = list(references)
    run_id = LEDGER.start_run(scope, selection, dagster_run_id=dagster_run_id, worker="synthetic")
    captured = [
        capture_object(o.policy_type, {**o.content, "id": o.external_id}, assignments=o.assignments, key=key)
        for o in objects
    ]
    by_type: dict[str, list[Any]] = {}
    for obj in captured:
        by_type.setdefault(obj.policy_type, []).append(obj)
    unknown = sorted(set(by_type) - set(selection.policy_types))
    if unknown:
        raise ValueError(f"objects of types outside the selection: {unknown}")
    used = set().union(*(references_in(o.document) for o in captured)) if captured else set()
    known = {(r.kind, r.ref_id) for r in refs}
    stored = refs + [Reference(kind, ref_id, resolved=False) for kind, ref_id in sorted(used - known)]
    for i, policy_type in enumerate(selection.policy_types):
        record_objects(scope, run_id, policy_type, by_type.get(policy_type, []), pages=1)
        if i == 0:  # the run's references, counted on its first type (the run sums its types)
            record_references(scope, run_id, policy_type, stored)
        scope.conn.commit()
        code = failed_types.get(policy_type)
        LEDGER.finish_type(
            scope, run_id, policy_type, status="failed" if code else "succeeded", error_code=code,
            error_message=f"{policy_type} could not be read" if code else None,
            requests=0, throttled=0, retries=0,
        )
    codes = sorted(set(failed_types.values()))
    LEDGER.finalize_run(scope, run_id, status=status, error_codes=codes, error_message=None)
    return run_id
