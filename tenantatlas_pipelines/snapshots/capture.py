"""From what Graph returned for one object to what a snapshot stores: the version document, its hash.

Shared by the snapshot run and the synthetic-snapshot helper, so a test snapshot is stored exactly
like a captured one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..canonical import canonical_dumps, sha256_text
from ..normalize import MAX_NAME_CHARS, clean_text
from ..policy_types import REGISTRY
from .assignments import assignment_records
from .normal_form import normal_content, version_document


@dataclass(frozen=True)
class CapturedObject:
    """One object ready to store: identity, display name, normal-form document and its hash."""

    policy_type: str
    external_id: str
    display_name: str | None
    document: dict[str, Any]
    content_hash: str
    document_json: str  # the canonical text the hash is of (stored as jsonb)


def display_name_of(policy_type: str, raw: Mapping[str, Any]) -> str | None:
    """The type's name field (`name` for settings catalog), cleaned as the inventory cleans it."""
    entry = REGISTRY.get(policy_type)
    value = raw.get(entry.name_field if entry else "displayName")
    return clean_text(value, MAX_NAME_CHARS) or None if isinstance(value, str) else None


def capture_object(
    policy_type: str,
    raw: Mapping[str, Any],
    *,
    assignments: Iterable[Mapping[str, Any]] | None = None,
    key: bytes | None = None,
) -> CapturedObject:
    """Normalise one raw object; `assignments` default to the raw object's own (`$expand`) ones."""
    raw_assignments = list(assignments if assignments is not None else raw.get("assignments") or [])
    document = version_document(
        normal_content(policy_type, raw, key), assignment_records(raw_assignments, policy_type)
    )
    text = canonical_dumps(document)  # serialised once: hashed here, stored as is
    return CapturedObject(
        policy_type=policy_type,
        external_id=str(raw["id"]),
        display_name=display_name_of(policy_type, raw),
        document=document,
        content_hash=sha256_text(text),
        document_json=text,
    )
