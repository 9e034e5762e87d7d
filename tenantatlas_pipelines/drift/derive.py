"""The pure derivation: pairs of versions (baseline, current) of one selection -> drift items.

Nothing here reads the database (compute.py does, then calls `derive_items`). The property diff is the
snapshots package's one `diff`; this module only decides what a drift item is:
- identity is (policy type, object id): an object in both snapshots whose content differs is `changed`
  (a rename is a change of its name's path), in the current only `added`, in the baseline only
  `missing` (never "deleted");
- confidence is `high` only when the current snapshot (and, for an explicit baseline, the baseline too)
  read the object's policy type completely and cleanly; otherwise `low` with the reason, so a type that
  failed in the current snapshot never yields a high-confidence `missing`;
- secrets are compared only with TENANTATLAS_SNAPSHOT_KEY (present.py), and a change that is only a
  re-keyed or re-encrypted secret is no change at all: such an object produces no item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..snapshots import Change, ReferenceIndex, diff
from ..store.snapshot_objects import VersionPair
from . import accept, present
from .model import DriftChange, DriftItem, Kind

__all__ = ["TypeReason", "VersionPair", "derive_items"]


# Why a type's items are low confidence: None when the type was read completely and cleanly.
TypeReason = Callable[[str], str | None]


def _with_assignments(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """Assignments always a list, so a first assignment is one change per assignment (named by its
    group), not one change of the whole list."""
    doc = dict(document)
    doc.setdefault("assignments", [])
    return doc


def _blinded(document: Mapping[str, Any]) -> Mapping[str, Any]:
    return _with_assignments(present.blind_secrets(document))


def _has_keyed_secret(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_keyed_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_keyed_secret(v) for v in value)
    return present.is_keyed(value)


def _changes(
    pair: VersionPair,
    compare_secrets: bool,
    baseline_refs: ReferenceIndex | None,
    current_refs: ReferenceIndex | None,
) -> list[DriftChange]:
    raw: list[Change] = diff(
        pair.baseline_content,
        pair.current_content,
        policy_type=pair.policy_type,
        canonicalise=_with_assignments,
    )
    if not compare_secrets and any(_has_keyed_secret(c.old) or _has_keyed_secret(c.new) for c in raw):
        # Keyed secret markers differ somewhere, but secrets are not compared: diff again with every
        # marker blinded (rare, so the common path does not pay for walking whole documents).
        raw = diff(
            pair.baseline_content, pair.current_content, policy_type=pair.policy_type, canonicalise=_blinded
        )
    return [
        DriftChange(
            path=present.display_path(c, baseline_refs, current_refs),
            baseline=present.display_value(c.old, c.segments, baseline_refs),
            current=present.display_value(c.new, c.segments, current_refs),
            key=c.path,
            current_raw=c.new,
        )
        for c in raw
        if present.secrets_comparable(c.old, c.new)
    ]


def derive_items(
    pairs: Sequence[VersionPair],
    *,
    type_reason: TypeReason,
    compare_secrets: bool,
    acceptances: Sequence[accept.Acceptance] = (),
    baseline_refs: ReferenceIndex | None = None,
    current_refs: ReferenceIndex | None = None,
) -> list[DriftItem]:
    """The drift items of the differing pairs, ordered by policy type and id."""
    by_object = accept.acceptances_by_object(acceptances)
    items: list[DriftItem] = []
    for pair in sorted(pairs, key=lambda p: (p.policy_type, p.external_id)):
        kind: Kind = (
            "added"
            if pair.baseline_content is None
            else "missing"
            if pair.current_content is None
            else "changed"
        )
        changes = _changes(pair, compare_secrets, baseline_refs, current_refs)
        if kind == "changed" and not changes:
            continue  # only volatile or uncomparable secret markers differed: nothing drifted
        reason = type_reason(pair.policy_type)
        item = DriftItem(
            policy_type=pair.policy_type,
            external_id=pair.external_id,
            display_name=pair.current_display_name if kind != "missing" else pair.baseline_display_name,
            kind=kind,
            confidence="low" if reason else "high",
            reason=reason,
            accepted=False,
            changes=tuple(changes),
            current_hash=pair.current_hash,
        )
        mine = by_object.get((pair.policy_type, pair.external_id), [])
        if mine and accept.is_accepted(item, mine):
            item = replace(item, accepted=True)
        items.append(item)
    return items
