"""Canonical JSON: the one text form that hashes identify things by (selections and snapshot content).

Keys sorted, no insignificant whitespace, UTF-8 (non-ASCII kept as is). Two values with the same
meaning produce the same text only after the caller has put them in their normal form (a selection's
arrays as sets, a snapshot's content through snapshots.normal_form); this module only fixes the text.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_dumps(value: Any) -> str:
    """The canonical JSON text of an already-normalised value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def sha256_text(text: str) -> str:
    """sha256 hex of a text, UTF-8 encoded."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_sha256(value: Any) -> str:
    """sha256 hex of the canonical JSON text, UTF-8 encoded."""
    return sha256_text(canonical_dumps(value))
