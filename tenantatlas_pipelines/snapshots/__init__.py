"""Snapshots: immutable, content-addressed records of each object's full normalised content.

The contract drift, compare, dependencies and the UI build on (docs/snapshots.md):
- `normal_form`: raw Graph content -> normal form, `version_document`, `content_hash`;
- `assignments`: the captured assignment records; `references`: groups, filters, scope tags resolved;
- `diff`: the one property-level diff, with an optional reference canonicaliser;
- `secrets`: the secret marker (keyed HMAC with TENANTATLAS_SNAPSHOT_KEY).
Storage is in `store/snapshot_runs.py`, `store/object_versions.py`, `store/snapshot_objects.py` and
`store/snapshot_references.py`.
"""

from .assignments import assignment_record, assignment_records, with_reference_names
from .diff import Change, canonicalise_references, diff, render_path
from .normal_form import content_hash, normal_content, version_document
from .references import GroupType, Reference, ReferenceIndex, RefKind, group_reference, references_in
from .secrets import SECRET_MARKER, is_marker, snapshot_key_from_env

__all__ = [
    "SECRET_MARKER",
    "Change",
    "GroupType",
    "RefKind",
    "Reference",
    "ReferenceIndex",
    "assignment_record",
    "assignment_records",
    "canonicalise_references",
    "content_hash",
    "diff",
    "group_reference",
    "is_marker",
    "normal_content",
    "references_in",
    "render_path",
    "snapshot_key_from_env",
    "version_document",
    "with_reference_names",
]
