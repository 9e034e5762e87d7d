"""The vocabulary of a cross-tenant compare: match kinds, one compared item, one step of a promotion plan.

JSON field names (`as_dict`) are a contract of `tenantatlas compare --json` (docs/compare.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..snapshots.diff import Change


class Match(StrEnum):
    IDENTICAL = "identical"
    DIFFERENT = "different"
    ONLY_IN_SOURCE = "only_in_source"
    ONLY_IN_TARGET = "only_in_target"
    AMBIGUOUS = "ambiguous"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    BLOCKED = "blocked"


def change_dict(change: Change) -> dict[str, Any]:
    """A property change as compare reports it: `old` is the source's value, `new` the target's."""
    return {"path": change.path, "source": change.old, "target": change.new}


@dataclass(frozen=True)
class CompareItem:
    """One (policy type, display name) key and what it matched.

    `source_external_ids` / `target_external_ids` list every object of the key on each side (two or
    more on a side: `ambiguous`, never guessed); `changes` is set only for `different`."""

    policy_type: str
    display_name: str
    match: Match
    source_external_ids: tuple[str, ...] = ()
    target_external_ids: tuple[str, ...] = ()
    changes: tuple[Change, ...] = ()

    @property
    def source_external_id(self) -> str | None:
        return self.source_external_ids[0] if len(self.source_external_ids) == 1 else None

    @property
    def target_external_id(self) -> str | None:
        return self.target_external_ids[0] if len(self.target_external_ids) == 1 else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "policy_type": self.policy_type,
            "display_name": self.display_name,
            "match": str(self.match),
            "source_external_id": self.source_external_id,
            "target_external_id": self.target_external_id,
            "source_external_ids": list(self.source_external_ids),
            "target_external_ids": list(self.target_external_ids),
            "changes": [change_dict(c) for c in self.changes],
        }


@dataclass(frozen=True)
class BlockingReference:
    """A reference of a source object the target cannot resolve by name (so promotion would break)."""

    kind: str  # group | assignment_filter | scope_tag | a policy type (an object referenced by id)
    name: str | None  # None: the reference did not resolve in the source either
    source_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "source_id": self.source_id}


@dataclass(frozen=True)
class PlanStep:
    """What making the target match the source takes for one object (nothing is written to Graph)."""

    action: Action
    policy_type: str
    display_name: str
    source_external_id: str | None
    target_external_id: str | None
    changes: tuple[Change, ...] = ()
    blocked_by: tuple[BlockingReference, ...] = field(default=())
    # create or update when blocked: what would be done once the references resolve
    intended: Action | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": str(self.action),
            "policy_type": self.policy_type,
            "display_name": self.display_name,
            "source_external_id": self.source_external_id,
            "target_external_id": self.target_external_id,
            "intended": str(self.intended) if self.intended else None,
            "changes": [change_dict(c) for c in self.changes],
            "blocked_by": [b.as_dict() for b in self.blocked_by],
        }
