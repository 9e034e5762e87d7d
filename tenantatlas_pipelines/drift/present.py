"""How a raw change from the one diff becomes a drift change people can read (pure).

- Secrets: values are masked (`[secret]`, never the stored HMAC); two markers are comparable only when
  both carry an HMAC (a plain marker against a keyed one says nothing about the secret: the key was
  configured in between), and without TENANTATLAS_SNAPSHOT_KEY no secret is compared at all
  (`blind_secrets` makes every marker the plain one before the diff).
- Assignments: the diff identifies an assignment by its group id (stable across group renames); the
  path names the group by the name it resolved to in the current snapshot (else the baseline's), a
  changed filter reads as `…filter` with the filter's name, and whole assignment records gain
  `group_name` / `filter_name` from their own snapshot's references.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..snapshots import SECRET_MARKER, Change, ReferenceIndex, RefKind, is_marker, render_path
from ..snapshots.assignments import with_reference_names
from ..snapshots.diff import Segment

_KEYED = SECRET_MARKER + ":hmac-sha256:"
_ASSIGNMENT_LABEL = re.compile(r"^\[(?P<kind>[a-z_]+):(?P<id>.+)\]$")


def blind_secrets(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The document with every secret marker the plain one (secrets then never differ)."""
    return _blind(document)


def _blind(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _blind(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blind(v) for v in value]
    return SECRET_MARKER if is_marker(value) else value


def mask(value: Any) -> Any:
    """A value for display: every secret marker, however deep, becomes `[secret]`."""
    return _blind(value)


def is_keyed(value: Any) -> bool:
    """Whether a value is a keyed (HMAC) secret marker."""
    return isinstance(value, str) and value.startswith(_KEYED)


def secrets_comparable(old: Any, new: Any) -> bool:
    """False when a change is only two secret markers that cannot be compared (one is not keyed)."""
    if is_marker(old) and is_marker(new):
        return is_keyed(old) and is_keyed(new)
    return True


def _name(kind: str, ref_id: str, refs: tuple[ReferenceIndex, ...]) -> str | None:
    ref_kind = RefKind.GROUP if kind in ("group", "exclusion_group") else None
    if ref_kind is None:
        return None
    return next((n for r in refs if (n := r.name(ref_kind, ref_id))), None)


def display_segments(segments: tuple[Segment, ...], refs: tuple[ReferenceIndex, ...]) -> tuple[Segment, ...]:
    """Assignment labels by group name; a filter id leaf as `filter`."""
    if not segments or segments[0] != "assignments":
        return segments
    out: list[Segment] = list(segments)
    if len(out) > 1 and isinstance(out[1], str) and (m := _ASSIGNMENT_LABEL.match(out[1])):
        name = _name(m.group("kind"), m.group("id"), refs)
        if name:
            out[1] = f"[{m.group('kind')}:{name}]"
    if len(out) == 3 and out[2] == "filter_id":
        out[2] = "filter"
    return tuple(out)


def display_value(value: Any, segments: tuple[Segment, ...], refs: ReferenceIndex | None) -> Any:
    """A value for display: masked; assignment records and filter ids named from `refs` (one side's)."""
    value = mask(value)
    if refs is None or not segments or segments[0] != "assignments" or value is None:
        return value
    if len(segments) == 2 and isinstance(value, Mapping):
        return with_reference_names({"assignments": [value]}, refs)["assignments"][0]
    if len(segments) == 1 and isinstance(value, list):
        return with_reference_names({"assignments": value}, refs).get("assignments", value)
    if len(segments) == 3 and segments[2] == "filter_id" and isinstance(value, str):
        return refs.name(RefKind.ASSIGNMENT_FILTER, value) or value
    return value


def display_path(
    change: Change, baseline_refs: ReferenceIndex | None, current_refs: ReferenceIndex | None
) -> str:
    refs = tuple(r for r in (current_refs, baseline_refs) if r is not None)
    return render_path(display_segments(change.segments, refs))
