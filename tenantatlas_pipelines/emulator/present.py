"""What changes between two reads of an unchanged object: re-encrypted secrets, volatile fields, order.

Stored content (payloads.py, catalog.py, assignments.py) is deterministic; this module turns it into what
one read returns. Every read re-encrypts encrypted OMA-URI values and secret settings-catalog values
(new ciphertext, new ``secretReferenceValueId``), as Intune does. A *content read* (one object, ``$expand``,
``/assignments``, ``/settings``, or any list when ``volatile_lists`` is on) also moves
``lastModifiedDateTime`` / ``modifiedDateTime`` / ``version`` / ``@odata.etag`` and shuffles every array,
so a snapshot's normal form has to absorb all of it. Plain listings keep metadata stable because the
inventory's "changed" bookkeeping (rightly) trusts ``lastModifiedDateTime``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import random
import secrets
import threading
import uuid
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

#: How many secretReferenceValueIds are remembered for getOmaSettingPlainTextValue (oldest dropped).
MAX_REFERENCES = 50_000


class Vault:
    """Encrypts secrets for one read and remembers which reference id stood for which value.

    The ciphertext never contains the plain text (a keyed stream with a fresh nonce per read), so a
    test that greps for ``SECRET-`` finds only what a client decrypted or stored on purpose.
    """

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._refs: OrderedDict[str, tuple[str, str, str]] = OrderedDict()

    def rotate(self) -> None:
        """A new encryption key (Intune re-encrypting its secrets). Earlier references keep resolving."""
        with self._lock:
            self._key = secrets.token_bytes(32)

    def encrypt(self, plaintext: str) -> str:
        nonce = os.urandom(16)
        data = plaintext.encode("utf-8")
        key = self._key
        stream = b""
        counter = 0
        while len(stream) < len(data):
            stream += hashlib.sha256(key + nonce + counter.to_bytes(4, "big")).digest()
            counter += 1
        return base64.b64encode(nonce + bytes(a ^ b for a, b in zip(data, stream, strict=False))).decode()

    def reference(self, tenant_id: str, object_id: str, plaintext: str) -> str:
        ref = str(uuid.uuid4())
        with self._lock:
            self._refs[ref] = (tenant_id, object_id, plaintext)
            while len(self._refs) > MAX_REFERENCES:
                self._refs.popitem(last=False)
        return ref

    def plaintext(self, tenant_id: str, object_id: str, ref: str) -> str | None:
        """The value a reference id stood for when it was served, for that tenant's object only."""
        with self._lock:
            found = self._refs.get(ref)
        if found is None or found[0] != tenant_id or found[1].lower() != object_id.lower():
            return None
        return found[2]


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def encrypt_secrets(obj: dict[str, Any], vault: Vault, tenant_id: str) -> None:
    """Serve encrypted OMA-URI values as fresh ciphertext with a fresh reference id (in place).
    Settings-catalog secrets are `encrypt_settings`' job."""
    oid = str(obj.get("id", ""))
    for setting in obj.get("omaSettings") or []:
        if isinstance(setting, dict) and setting.get("isEncrypted") and isinstance(setting.get("value"), str):
            plain = setting["value"]
            setting["value"] = vault.encrypt(plain)
            setting["secretReferenceValueId"] = vault.reference(tenant_id, oid, plain)


def encrypt_settings(settings: list[dict[str, Any]], vault: Vault, rng: random.Random | None = None) -> None:
    """Secret settings-catalog values become an encrypted value token, new on every read (in place).

    With `rng`, the same single pass also reorders every array of the trees (the settings list itself,
    choice children, group instances and their children, simple collections): the hot path of a
    ``$expand=settings`` listing, where a generic recursive shuffle cost half the page.
    """
    if rng is not None and len(settings) > 1:
        rng.shuffle(settings)
    stack: list[Any] = [s.get("settingInstance") for s in settings if isinstance(s, dict)]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        value = node.get("simpleSettingValue")
        if value is not None:
            if isinstance(value, dict) and str(value.get("@odata.type", "")).endswith("SecretSettingValue"):
                value["value"] = vault.encrypt(str(value.get("value")))
                value["valueState"] = "encryptedValueToken"
            continue
        choice = node.get("choiceSettingValue")
        if choice is not None:
            stack.extend(_reordered(choice.get("children") if isinstance(choice, dict) else None, rng))
            continue
        groups = node.get("groupSettingCollectionValue")
        if groups:
            for group in _reordered(groups, rng):
                stack.extend(_reordered(group.get("children") if isinstance(group, dict) else None, rng))
            continue
        _reordered(node.get("simpleSettingCollectionValue"), rng)


def _reordered(items: Any, rng: random.Random | None) -> list[Any]:
    """`items` shuffled in place when it is a list and `rng` is given; [] for anything else."""
    if not isinstance(items, list):
        return []
    if rng is not None and len(items) > 1:
        rng.shuffle(items)
    return items


def shuffle_arrays(node: Any, rng: random.Random, skip: frozenset[str] = frozenset()) -> None:
    """Reorder every array, at every depth (in place): Graph does not promise an order. Keys in `skip`
    (at the top level) are left to a specialised pass."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, (dict, list)) and key not in skip:
                shuffle_arrays(value, rng)
    elif isinstance(node, list):
        if len(node) > 1:
            rng.shuffle(node)
        for value in node:
            if isinstance(value, (dict, list)):
                shuffle_arrays(value, rng)


def vary(obj: dict[str, Any], rng: random.Random) -> None:
    """Move the volatile fields of one object (in place): what changes without a configuration change.
    Reorders every array except ``settings`` (see `encrypt_settings`)."""
    if "lastModifiedDateTime" in obj:
        obj["lastModifiedDateTime"] = _now_iso()
    if obj.get("modifiedDateTime") is not None:
        obj["modifiedDateTime"] = _now_iso()
    version = obj.get("version")
    if isinstance(version, int) and not isinstance(version, bool):
        obj["version"] = version + rng.randrange(1, 1000)
    elif isinstance(version, str) and version.startswith('"'):
        obj["version"] = f'"{rng.getrandbits(32):08x}-0000-0d00-0000-{rng.getrandbits(48):012x}"'
    obj["@odata.etag"] = f'W/"{base64.b64encode(rng.randbytes(12)).decode()}"'
    for key in ("assignments", "settings"):  # nested entities carry no etag of their own here
        for item in obj.get(key) or []:
            if isinstance(item, dict):
                item.pop("@odata.etag", None)
    shuffle_arrays(obj, rng, skip=frozenset({"settings"}))


def read_rng() -> random.Random:
    """A fresh, unpredictable generator for one read's volatility."""
    return random.Random(os.urandom(16))
