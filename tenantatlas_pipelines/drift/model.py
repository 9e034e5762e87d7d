"""What drift reports: items (changed / added / missing) with their property changes, and the report.

Frozen records crossing from the pure derivation (derive.py) to the CLI, the asset and the store. The
JSON forms (`as_json`) are the contract of `tenantatlas drift --json` (issue 13): exactly these fields.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from ..store.drift_items import DriftCountColumns

Kind = Literal["changed", "added", "missing"]
BaselineKind = Literal["pinned", "previous", "explicit"]
KINDS: tuple[Kind, ...] = ("changed", "added", "missing")


@dataclass(frozen=True)
class DriftChange:
    """One changed property as people read it, plus what acceptances fingerprint.

    `path`, `baseline`, `current`: the display form (assignment groups and filters by resolved name,
    secrets masked). `key` and `current_raw`: the stored form (ids, secret markers as stored), so an
    accepted value is recognised exactly and a group rename does not re-key it."""

    path: str
    baseline: Any
    current: Any
    key: str
    current_raw: Any

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "baseline": self.baseline, "current": self.current}


@dataclass(frozen=True)
class DriftItem:
    """One object that drifted between the baseline and the current snapshot."""

    policy_type: str
    external_id: str
    display_name: str | None
    kind: Kind
    confidence: Literal["high", "low"]
    reason: str | None
    accepted: bool
    changes: tuple[DriftChange, ...]
    current_hash: str | None  # content hash of the current version (None: missing now)

    @property
    def alerting(self) -> bool:
        """What alerts (asset check, `--fail-on-drift`): high confidence and not accepted."""
        return self.confidence == "high" and not self.accepted

    def as_json(self) -> dict[str, Any]:
        return {
            "policy_type": self.policy_type,
            "external_id": self.external_id,
            "display_name": self.display_name,
            "kind": self.kind,
            "confidence": self.confidence,
            "reason": self.reason,
            "accepted": self.accepted,
            "changes": [c.as_json() for c in self.changes],
        }


@dataclass(frozen=True)
class DriftCounts(DriftCountColumns):
    """The numbers the asset plots and the summary table keeps (its columns: store/drift_items.py)."""

    @classmethod
    def of(cls, items: tuple[DriftItem, ...] | list[DriftItem]) -> DriftCounts:
        kinds = Counter(i.kind for i in items)
        return cls(
            items=len(items),
            changed=kinds["changed"],
            added=kinds["added"],
            missing=kinds["missing"],
            high=sum(i.confidence == "high" for i in items),
            low=sum(i.confidence == "low" for i in items),
            accepted=sum(i.accepted for i in items),
            unaccepted_high=sum(i.alerting for i in items),
        )


@dataclass(frozen=True)
class DriftReport:
    """The drift of one (tenant, selection) between two snapshots."""

    tenant_id: str
    selection_name: str
    selection_hash: str
    baseline_snapshot_id: int
    current_snapshot_id: int
    baseline_kind: BaselineKind
    items: tuple[DriftItem, ...]

    @property
    def counts(self) -> DriftCounts:
        return DriftCounts.of(self.items)

    def as_json(self) -> dict[str, Any]:
        return {
            "baseline_snapshot_id": self.baseline_snapshot_id,
            "current_snapshot_id": self.current_snapshot_id,
            "baseline_kind": self.baseline_kind,
            "items": [i.as_json() for i in self.items],
        }
