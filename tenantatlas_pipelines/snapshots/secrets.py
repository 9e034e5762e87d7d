"""Secrets in policy content are replaced by a marker before anything is hashed or stored.

Without TENANTATLAS_SNAPSHOT_KEY the marker is the constant `SECRET_MARKER`: a secret's presence is
recorded, its value is not, and a changed secret is not visible (drift does not compare secrets).
With the key set (outside the database, never stored or logged), a plaintext secret becomes
`SECRET_MARKER + ":hmac-sha256:" + HMAC(key, value)`, so a changed secret shows as a change without
being readable. Ciphertext Graph re-encrypts on every read (encrypted OMA-URI values, encrypted
settings-catalog secrets) always gets the plain marker: hashing it would report a change on every read.
"""

from __future__ import annotations

import hashlib
import hmac
import os

SECRET_MARKER = "[secret]"
SNAPSHOT_KEY_ENV = "TENANTATLAS_SNAPSHOT_KEY"


def snapshot_key_from_env() -> bytes | None:
    """The HMAC key from the environment, or None (secrets then become the plain marker)."""
    value = os.environ.get(SNAPSHOT_KEY_ENV, "")
    return value.encode("utf-8") if value else None


def secret_marker(value: str, key: bytes | None) -> str:
    """The marker that replaces a plaintext secret: keyed HMAC when a key is configured."""
    if not key:
        return SECRET_MARKER
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{SECRET_MARKER}:hmac-sha256:{digest}"


def is_marker(value: object) -> bool:
    """Whether a normal-form value is a secret marker (for display: never show more than this)."""
    return isinstance(value, str) and value.startswith(SECRET_MARKER)
