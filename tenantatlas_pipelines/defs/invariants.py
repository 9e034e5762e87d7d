"""Invariants the asset checks guard, as pure functions over plain rows (tested without I/O).

- no duplicate identities: one row per (policy_type, external_id); Graph ids are GUIDs, so two ids that
  differ only in case are the same object observed twice;
- metadata keys within the policy type's whitelist: list payloads can carry secrets, anything else must
  have been dropped by the normaliser;
- no `deleted`: the word is reserved for a later feature and must never be produced.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..normalize import fold_id
from ..policy_types import REGISTRY

RESERVED_WORD = "deleted"


def duplicate_identities(identities: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Identities (policy_type, external_id folded as normalize.fold_id stores it) seen more than once,
    sorted. The same fold as the store's check (store.inventory.integrity_facts), so both agree."""
    counts = Counter((policy_type, fold_id(external_id)) for policy_type, external_id in identities)
    return sorted(identity for identity, n in counts.items() if n > 1)


def whitelist(policy_type: str) -> frozenset[str]:
    """The normalised metadata keys a policy type may store."""
    return frozenset(f.key for f in REGISTRY[policy_type].whitelist)


def meta_keys_outside_whitelist(items: Iterable[tuple[str, Iterable[str]]]) -> dict[str, list[str]]:
    """Per policy type, the stored metadata keys that its whitelist does not allow (empty = fine).

    Takes (policy_type, keys) pairs: a stored `meta` dict, or the keys the store aggregated per type.
    """
    bad: dict[str, set[str]] = {}
    for policy_type, meta in items:
        allowed = whitelist(policy_type) if policy_type in REGISTRY else frozenset()
        extra = set(meta) - allowed
        if extra:
            bad.setdefault(policy_type, set()).update(extra)
    return {k: sorted(v) for k, v in sorted(bad.items())}


def deleted_markers(columns: Iterable[str], values: Iterable[Any]) -> list[str]:
    """Where the reserved word appears: a column name, or a value (confidence, reason, status)."""
    found = [f"column {c!r}" for c in columns if RESERVED_WORD in str(c).lower()]
    found += sorted({f"value {v!r}" for v in values if isinstance(v, str) and RESERVED_WORD in v.lower()})
    return found
