"""Compare two tenants' snapshot contents: match objects by (policy type, display name), diff each pair.

Pure: the caller loads both sides (compare/run.py from the store, tests from synthetic snapshots).
Rules (docs/compare.md):
- the match key is the policy type and the display name, trimmed and case-insensitive;
- a key held by two or more objects on one side is `ambiguous` — reported with every id, never
  paired by guess;
- a pair is diffed with the snapshots package's one `diff`, each document first passed through its own
  side's reference canonicaliser (compare/canonical.py; the side's tenant id, domains and object ids
  were already rewritten when it was loaded), so a baseline deployed to two tenants with different
  ids is `identical`; otherwise `different` with its property changes (source -> target);
- a key on one side only is `only_in_source` / `only_in_target`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..snapshots.diff import diff
from ..snapshots.references import Reference
from .canonical import reference_canonicaliser
from .model import CompareItem, Match


@dataclass(frozen=True)
class SideObject:
    """One object of a side: its normal form as loaded (group / filter / scope-tag ids still in it; the
    tenant's own id, domains and other objects' ids already rewritten, see compare/run.py)."""

    policy_type: str
    external_id: str
    display_name: str | None
    content: dict[str, Any]


@dataclass(frozen=True)
class Side:
    """One tenant's snapshot as compare needs it."""

    tenant_key: str
    tenant_id: str
    snapshot_id: int | None
    objects: Sequence[SideObject]
    references: Sequence[Reference] = ()
    status: str = "succeeded"

    @cached_property
    def canonical(self) -> dict[str, Mapping[str, Any]]:
        """Every object's document with tenant-specific ids replaced by names, by external id; computed
        once per side (a golden tenant compared with a whole fleet is canonicalised once)."""
        canon = reference_canonicaliser(self.references)
        return {o.external_id: canon(o.content) for o in self.objects}

    def summary(self) -> dict[str, Any]:
        return {"tenant_key": self.tenant_key, "tenant_id": self.tenant_id, "snapshot_id": self.snapshot_id,
                "status": self.status, "objects": len(self.objects)}


def match_key(policy_type: str, display_name: str | None) -> tuple[str, str]:
    """(policy type, trimmed case-folded name): what two tenants' objects are paired by."""
    return policy_type, (display_name or "").strip().casefold()


def _by_key(objects: Sequence[SideObject]) -> dict[tuple[str, str], list[SideObject]]:
    out: dict[tuple[str, str], list[SideObject]] = {}
    for obj in objects:
        out.setdefault(match_key(obj.policy_type, obj.display_name), []).append(obj)
    return out


@dataclass
class CompareResult:
    source: Side
    target: Side
    items: list[CompareItem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {str(m): 0 for m in Match}
        for item in self.items:
            out[str(item.match)] += 1
        return out


def compare_sides(source: Side, target: Side) -> CompareResult:
    """Every key of either side with its match kind, ordered by policy type and name."""
    canon_s, canon_t = source.canonical, target.canonical
    left, right = _by_key(source.objects), _by_key(target.objects)
    result = CompareResult(source, target)
    for key in sorted(set(left) | set(right)):
        s, t = left.get(key, []), right.get(key, [])
        name = ((s or t)[0].display_name or "").strip()
        ids_s = tuple(sorted(o.external_id for o in s))
        ids_t = tuple(sorted(o.external_id for o in t))
        if len(s) > 1 or len(t) > 1:
            match, changes = Match.AMBIGUOUS, ()
        elif not t:
            match, changes = Match.ONLY_IN_SOURCE, ()
        elif not s:
            match, changes = Match.ONLY_IN_TARGET, ()
        else:
            found = diff(canon_s[s[0].external_id], canon_t[t[0].external_id], policy_type=key[0])
            match, changes = (Match.DIFFERENT, tuple(found)) if found else (Match.IDENTICAL, ())
        result.items.append(CompareItem(key[0], name, match, ids_s, ids_t, changes))
    return result
