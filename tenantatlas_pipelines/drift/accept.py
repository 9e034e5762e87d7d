"""Accepted deviations: what an acceptance covers and the fingerprint that says it still applies (pure).

An acceptance names an object and optionally a path. Without a path it covers the whole item and its
fingerprint is the item's kind and current content hash; with a path it covers the changes at or under
the path (`assignments` covers `assignments[group:Sales].filter_mode`) and its fingerprint is their
stored paths and current values. An item is accepted when a whole-item acceptance matches it, or when
every one of its changes is covered by a matching path acceptance. When the value moves on, the
fingerprint differs and the item alerts again; when it comes back, the acceptance applies again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..canonical import canonical_sha256
from ..store.drift_acceptances import Acceptance
from .model import DriftChange, DriftItem

__all__ = ["Acceptance", "accepted_value", "covered_changes", "covers", "fingerprint", "is_accepted"]


def covers(path: str, change_path: str) -> bool:
    """Whether an acceptance path covers a change's (display) path: equal, or a parent of it."""
    if change_path == path:
        return True
    return change_path.startswith(path) and change_path[len(path)] in ".["


def covered_changes(item: DriftItem, path: str | None) -> list[DriftChange]:
    return list(item.changes) if path is None else [c for c in item.changes if covers(path, c.path)]


def fingerprint(item: DriftItem, path: str | None) -> str:
    """The value an acceptance of `item` (at `path`) records and is later matched against."""
    if path is None:
        return canonical_sha256({"kind": item.kind, "current": item.current_hash})
    return canonical_sha256(
        {"kind": item.kind, "changes": sorted([c.key, c.current_raw] for c in covered_changes(item, path))}
    )


def accepted_value(item: DriftItem, path: str | None) -> list[dict[str, Any]]:
    """What people see as the accepted value: the covered changes' display form (secrets masked)."""
    return [{"path": c.path, "current": c.current} for c in covered_changes(item, path)]


def is_accepted(item: DriftItem, acceptances: Sequence[Acceptance]) -> bool:
    """Whether the active acceptances of this object still cover everything the item reports."""
    mine = [a for a in acceptances if (a.policy_type, a.external_id) == (item.policy_type, item.external_id)]
    if not mine:
        return False
    if any(a.path is None and a.value_hash == fingerprint(item, None) for a in mine):
        return True
    if not item.changes:
        return False
    matching = [
        a.path
        for a in mine
        if a.path is not None and covered_changes(item, a.path) and a.value_hash == fingerprint(item, a.path)
    ]
    return all(any(covers(p, c.path) for p in matching) for c in item.changes)


def acceptances_by_object(acceptances: Iterable[Acceptance]) -> dict[tuple[str, str], list[Acceptance]]:
    out: dict[tuple[str, str], list[Acceptance]] = {}
    for a in acceptances:
        out.setdefault((a.policy_type, a.external_id), []).append(a)
    return out
