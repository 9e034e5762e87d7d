"""The one property-level diff of two normal-form documents (drift, compare and the UI all call it).

`diff(old, new)` returns one `Change(path, old, new)` per differing property, in path order. `None`
stands for "absent" (the normal form has no nulls). Rules:
- objects are compared key by key;
- ordered arrays (the type's `rules.ordered_paths`) element by element when their lengths agree,
  otherwise as one change of the whole array;
- set arrays of scalars are one change of the whole array when their contents differ (order never
  counts);
- set arrays of objects match elements by identity: assignments by `target_kind` + group (id, or name
  once a canonicaliser replaced ids), other objects by their whole content; matched elements are
  diffed recursively, unmatched ones are one change each (old or new None) — also when the whole set
  appears or disappears.

Paths read like `displayName`, `settings.device_vendor_msft_x`, `settings["a/b"]`,
`assignments[group:<id>].filter_mode`, `omaSettings[./Vendor/MSFT/X].value`, `edgeHomepageUrls[0]`,
`rules[#1a2b3c4d]` (an element
without identity, labelled by its content hash). `Change.segments` has the same path as a tuple.

`canonicalise` is applied to both documents first: compare passes `canonicalise_references(...)` so
tenant-specific ids compare by resolved name; drift passes nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..canonical import canonical_dumps, canonical_sha256
from .references import ReferenceIndex, RefKind
from .rules import rules_for

Segment = str | int
Canonicaliser = Callable[[Mapping[str, Any]], Mapping[str, Any]]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Change:
    """One differing property: its JSON path, the old value and the new one (None = absent)."""

    path: str
    old: Any
    new: Any
    segments: tuple[Segment, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


def render_path(segments: tuple[Segment, ...]) -> str:
    """The display form of a path (see the module docstring)."""
    out = ""
    for seg in segments:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif seg.startswith("[") and seg.endswith("]"):
            out += seg  # an element label, already bracketed
        elif _IDENTIFIER.match(seg):
            out += f".{seg}" if out else seg
        else:
            out += f"[{json.dumps(seg, ensure_ascii=False)}]"
    return out


def _element_label(element: Any) -> str | None:
    """Identity of a set element, when it has one (assignments)."""
    if isinstance(element, Mapping) and "target_kind" in element:
        who = element.get("group_id") or element.get("group_name") or ""
        return f"[{element['target_kind']}:{who}]" if who else f"[{element['target_kind']}]"
    if isinstance(element, Mapping) and isinstance(element.get("omaUri"), str):
        return f"[{element['omaUri']}]"  # OMA-URI settings are identified by their URI
    return None


def _hash_label(element: Any) -> str:
    return f"[#{canonical_sha256(element)[:8]}]"


def _diff(a: Any, b: Any, segs: tuple[Segment, ...], keys: str, ordered: frozenset[str],
          out: list[Change]) -> None:
    if a == b:
        return
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for k in sorted(set(a) | set(b)):
            _diff(a.get(k), b.get(k), (*segs, k), f"{keys}.{k}" if keys else k, ordered, out)
        return
    if keys not in ordered and _object_set_and_absent(a, b):
        # A set of objects that appears or disappears whole (the first assignment of an object):
        # one change per element, like any other change of the set.
        _diff_set(a or [], b or [], segs, keys, ordered, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        if keys in ordered:
            if len(a) == len(b):
                for i, (x, y) in enumerate(zip(a, b, strict=True)):
                    _diff(x, y, (*segs, i), keys, ordered, out)
                return
        else:
            _diff_set(a, b, segs, keys, ordered, out)
            return
    out.append(Change(render_path(segs), a, b, segs))


def _object_set_and_absent(a: Any, b: Any) -> bool:
    if a is None and isinstance(b, list):
        return any(isinstance(x, Mapping) for x in b)
    if b is None and isinstance(a, list):
        return any(isinstance(x, Mapping) for x in a)
    return False


def _diff_set(a: list[Any], b: list[Any], segs: tuple[Segment, ...], keys: str, ordered: frozenset[str],
              out: list[Change]) -> None:
    if {canonical_dumps(x) for x in a} == {canonical_dumps(y) for y in b}:
        return
    if not any(isinstance(x, Mapping) for x in (*a, *b)):
        out.append(Change(render_path(segs), a, b, segs))
        return

    def keyed(items: list[Any]) -> dict[str, Any] | None:
        labels = [_element_label(x) for x in items]
        if None in labels or len(set(labels)) != len(labels):
            return None
        return dict(zip(labels, items, strict=True))  # type: ignore[arg-type]

    left, right = keyed(a), keyed(b)
    if left is None or right is None:
        left = {_hash_label(x): x for x in a}
        right = {_hash_label(y): y for y in b}
    for label in sorted(set(left) | set(right)):
        _diff(left.get(label), right.get(label), (*segs, label), keys, ordered, out)


def diff(
    old: Mapping[str, Any] | None,
    new: Mapping[str, Any] | None,
    *,
    policy_type: str | None = None,
    canonicalise: Canonicaliser | None = None,
) -> list[Change]:
    """Property-level changes from `old` to `new` (either may be None: an added or missing object)."""
    a = dict(old or {})
    b = dict(new or {})
    if canonicalise is not None:
        a, b = dict(canonicalise(a)), dict(canonicalise(b))
    out: list[Change] = []
    _diff(a, b, (), "", rules_for(policy_type).ordered_paths, out)
    return out


def canonicalise_references(refs: ReferenceIndex) -> Canonicaliser:
    """A canonicaliser that swaps a tenant's group, filter and scope-tag ids for their resolved names.

    For comparing two tenants: the same baseline deployed twice has different ids but the same names.
    An id that does not resolve becomes `unresolved:<id>`, so it never matches a name by accident.
    Build one per side (each side's own snapshot references).
    """

    def name(kind: RefKind, ref_id: str) -> str:
        return refs.name(kind, ref_id) or f"unresolved:{ref_id}"

    def apply(document: Mapping[str, Any]) -> Mapping[str, Any]:
        doc = dict(document)
        assignments = []
        for record in doc.get("assignments") or []:
            record = dict(record)
            group_id = record.pop("group_id", None)
            if group_id:
                record["group_name"] = name(RefKind.GROUP, group_id)
            filter_id = record.pop("filter_id", None)
            if filter_id:
                record["filter_name"] = name(RefKind.ASSIGNMENT_FILTER, filter_id)
            assignments.append(record)
        if assignments:
            doc["assignments"] = assignments
        for key in ("roleScopeTagIds", "roleScopeTags"):
            if key in doc:
                doc[key] = sorted(name(RefKind.SCOPE_TAG, str(t)) for t in doc[key])
        return doc

    return apply
