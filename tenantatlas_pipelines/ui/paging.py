"""Keyset cursors in URLs: the key of the row a page starts after (or ends before), opaque but inert.

A cursor is the row key's strings as JSON, base64url-encoded. Decoding never trusts it beyond its shape:
anything that is not a list of the expected number of strings is rejected (the page says so).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence


class BadCursor(ValueError):
    """A cursor parameter that was not produced by this application."""


def encode(key: Sequence[str]) -> str:
    raw = json.dumps(list(key), ensure_ascii=False, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(value: str, parts: int) -> tuple[str, ...]:
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("not a cursor of this application") from exc
    if not (isinstance(key, list) and len(key) == parts and all(isinstance(k, str) for k in key)):
        raise BadCursor("not a cursor of this application")
    return tuple(key)
