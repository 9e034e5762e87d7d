"""Raw Graph items -> inventory records: identity, name, and whitelisted metadata only.

List payloads carry secrets (OMA-URI values, pre-shared keys) and large blobs (app icons), so nothing
leaves this module that the type's whitelist does not name. Normalisation never raises for bad data: a
bad item becomes a counted `ItemRejected`, an odd value (of any type: a year-1 timestamp whose offset
leaves the calendar, an integer too long to print) a dropped, counted key.

Ids are Graph object ids (GUIDs, case-insensitive): they are stored with ASCII letters lower-cased
(`fold_id`), so the same object listed as "ABC" and "abc" is one row, and the duplicate check
(defs/invariants.py, store.inventory.integrity_facts) folds case the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import ErrorCode
from .policy_types import Kind, MetaField, PolicyType

MAX_NAME_CHARS = 1024
MAX_TEXT_CHARS = 256
MAX_LIST_ITEMS = 100
MAX_ID_CHARS = 512
_FRACTION = re.compile(r"(\.\d{6})\d+")
# A lone surrogate ("\ud800" in JSON) decodes to a str that UTF-8, psycopg and PostgreSQL all refuse.
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class InventoryRecord:
    """One observed object, ready to upsert."""

    external_id: str
    display_name: str | None
    meta: dict[str, Any]
    meta_keys_dropped: int


@dataclass(frozen=True)
class ItemRejected:
    """An item that cannot be stored (no id, not an object); counted, never fatal."""

    code: ErrorCode
    reason: str


@dataclass(frozen=True)
class ItemFiltered:
    """An item Graph lists that is not the tenant's own configuration (client-side filter). Its id is
    kept: the object still exists, so a stored row of it counts as seen (never as missing)."""

    external_id: str


Normalized = InventoryRecord | ItemRejected | ItemFiltered


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def fold_id(external_id: str) -> str:
    """The stored form of a Graph object id: ASCII letters lower-cased, nothing else touched.

    ASCII only, so Python and PostgreSQL agree exactly (`lower(x COLLATE "C")` folds the same letters
    whatever the database's locale); GUIDs and Graph's compound ids are ASCII."""
    return external_id.translate(_ASCII_LOWER)


def storable(value: str) -> str:
    """The string PostgreSQL can store: no NUL, lone surrogates replaced by U+FFFD."""
    value = value.replace("\x00", "")
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def clean_text(value: str, limit: int) -> str:
    """A storable string, cut so one item cannot bloat a row."""
    value = storable(value)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _lookup(item: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = item
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _timestamp(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = _FRACTION.sub(r"\1", storable(value.strip()))
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        # OverflowError: "0001-01-01T00:00:00+01:00" (or year 9999 west of UTC) leaves the calendar.
        return parsed.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except (ValueError, OverflowError):
        return None


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        try:
            text = storable(str(value))
        except ValueError:  # an int past Python's int-to-str limit (4,300 digits)
            return None
        return text if len(text) <= MAX_TEXT_CHARS else None
    return None


def _text_list(value: Any) -> list[str] | None:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_LIST_ITEMS:
        return None
    out = [_scalar_text(v) for v in value]
    if any(v is None for v in out):
        return None
    return [v for v in out if v is not None]


def normalize_value(field: MetaField, value: Any) -> Any:
    """The value in the normalised vocabulary's shape, or None when it does not fit (dropped)."""
    if field.kind is Kind.TIMESTAMP:
        return _timestamp(value)
    if field.kind is Kind.BOOL:
        return value if isinstance(value, bool) else None
    if field.kind is Kind.TEXT_LIST:
        return _text_list(value)
    return _scalar_text(value)


def normalize_item(policy_type: PolicyType, item: Any) -> Normalized:
    """Turn one raw Graph item into a record, a rejection or a filtered marker; never raises."""
    try:
        return _normalize(policy_type, item)
    except Exception as exc:  # a defect, not bad data: the item is counted, its page and run go on
        return ItemRejected(ErrorCode.ITEM_INVALID, f"item could not be normalised ({type(exc).__name__})")


def _item_id(item: Mapping[str, Any]) -> str | ItemRejected:
    raw_id = item.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        try:
            raw_id = str(raw_id)
        except ValueError:  # past Python's int-to-str limit: far longer than any id
            return ItemRejected(ErrorCode.ITEM_INVALID, f"item id longer than {MAX_ID_CHARS} characters")
    if not isinstance(raw_id, str) or not storable(raw_id).strip():
        return ItemRejected(ErrorCode.ITEM_WITHOUT_ID, "item has no usable 'id'")
    external_id = fold_id(storable(raw_id).strip())
    if len(external_id) > MAX_ID_CHARS:
        return ItemRejected(ErrorCode.ITEM_INVALID, f"item id longer than {MAX_ID_CHARS} characters")
    return external_id


def _normalize(policy_type: PolicyType, item: Any) -> Normalized:
    if not isinstance(item, Mapping):
        return ItemRejected(ErrorCode.ITEM_INVALID, f"item is a {type(item).__name__}, not a JSON object")
    external_id = _item_id(item)
    if isinstance(external_id, ItemRejected):
        return external_id
    if policy_type.keep is not None and not policy_type.keep(item):
        return ItemFiltered(external_id)

    name = item.get(policy_type.name_field)
    display_name = clean_text(name, MAX_NAME_CHARS) if isinstance(name, str) else None

    meta: dict[str, Any] = {}
    rejected_values = 0
    for field in policy_type.whitelist:
        try:
            raw = _lookup(item, field.source)
            value = None if raw is None else normalize_value(field, raw)
        except Exception:  # whatever the value, it costs its own field only (counted below)
            raw, value = True, None
        if raw is None:
            continue
        if value is None:
            rejected_values += 1
        else:
            meta[field.key] = value
    known = policy_type.source_keys
    unknown = sum(1 for key in item if key not in known)
    return InventoryRecord(external_id, display_name, meta, unknown + rejected_values)
