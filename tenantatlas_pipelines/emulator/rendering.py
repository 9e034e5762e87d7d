"""Settings-catalog settings as pre-serialised JSON with the places one read varies left open.

A `$expand=settings` page is ~850 KB of JSON, almost all of it settings trees that never change between
reads except where `present.encrypt_settings` varies them: the order of the settings list, of choice
children, of group collections and their children, of simple collections, and the ciphertext of secret
values. Parsing the frozen tree, varying it and serialising it again on every read was most of the
emulator's time per page. `compile_settings` turns a settings list into a template once — literal JSON
text for everything `encrypt_settings` leaves alone, open slots for exactly what it changes — and
`render` fills the slots for one read: the same content, reordered and re-encrypted as
`encrypt_settings` would, as text. The traversal below mirrors `encrypt_settings` node for node (a test
compares the two); anything it does not recognise stays literal, as `encrypt_settings` leaves it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from .present import Vault

# A template: literal JSON text (compiled: UTF-8 bytes, see `_encoded`), or one of
#   (_CAT, pieces)            pieces (literal text or templates) one after the other
#   (_SEQ, items, literal)    a JSON array of templates, reordered on every read (`literal`: all
#                             items are plain text, joined without walking them)
#   (_SECRET, plaintext)      a JSON string: the plaintext encrypted for this read
# Adjacent literal text is joined when a template is built, so a read walks only the open slots.
Template = str | tuple[Any, ...]
_CAT, _SEQ, _SECRET = 0, 1, 2
_SECRET_SUFFIX = "SecretSettingValue"


def json_text(value: Any) -> str:
    """Compact JSON text, as the emulator writes bodies (core.json_bytes before encoding)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _cat(pieces: list[Template]) -> Template:
    """Pieces one after the other, adjacent literal text joined; plain text when all of it is."""
    merged: list[Template] = []
    for piece in pieces:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] = merged[-1] + piece
        elif isinstance(piece, tuple) and piece[0] == _CAT:
            for inner in piece[1]:
                if isinstance(inner, str) and merged and isinstance(merged[-1], str):
                    merged[-1] = merged[-1] + inner
                else:
                    merged.append(inner)
        else:
            merged.append(piece)
    if len(merged) == 1 and isinstance(merged[0], str):
        return merged[0]
    return (_CAT, tuple(merged))


def _obj(node: Mapping[str, Any], overrides: dict[str, Template]) -> Template:
    """`node` as an object template: members in their order, `overrides` replacing some members'
    values (members `overrides` adds are appended, as an assignment to a dict would)."""
    pieces: list[Template] = []
    members = [(k, overrides.pop(k) if k in overrides else json_text(v)) for k, v in node.items()]
    members.extend(overrides.items())
    for n, (key, value) in enumerate(members):
        pieces.append(("," if n else "{") + json_text(key) + ":")
        pieces.append(value)
    pieces.append("}" if members else "{}")
    return _cat(pieces)


def _seq(items: list[Template], shuffled: bool) -> Template:
    if shuffled and len(items) > 1:
        return (_SEQ, tuple(items), all(isinstance(t, str) for t in items))
    pieces: list[Template] = ["["]
    for n, item in enumerate(items):
        if n:
            pieces.append(",")
        pieces.append(item)
    pieces.append("]")
    return _cat(pieces)


def _node(node: Any) -> Template:
    """One setting instance, as `encrypt_settings` walks it."""
    if not isinstance(node, dict):
        return json_text(node)
    value = node.get("simpleSettingValue")
    if value is not None:
        if isinstance(value, dict) and str(value.get("@odata.type", "")).endswith(_SECRET_SUFFIX):
            secret = _obj(value, {"value": (_SECRET, str(value.get("value"))),
                                  "valueState": json_text("encryptedValueToken")})
            return _obj(node, {"simpleSettingValue": secret})
        return json_text(node)
    choice = node.get("choiceSettingValue")
    if choice is not None:
        children = choice.get("children") if isinstance(choice, dict) else None
        if not isinstance(children, list):
            return json_text(node)
        return _obj(node, {"choiceSettingValue": _obj(choice, {"children": _seq([_node(c) for c in children],
                                                                                    True)})})
    groups = node.get("groupSettingCollectionValue")
    if groups:
        if not isinstance(groups, list):
            return json_text(node)
        compiled = []
        for group in groups:
            children = group.get("children") if isinstance(group, dict) else None
            compiled.append(_obj(group, {"children": _seq([_node(c) for c in children], True)})
                            if isinstance(children, list) else json_text(group))
        return _obj(node, {"groupSettingCollectionValue": _seq(compiled, True)})
    collection = node.get("simpleSettingCollectionValue")
    if isinstance(collection, list):
        return _obj(node, {"simpleSettingCollectionValue": _seq([json_text(v) for v in collection], True)})
    return json_text(node)


def _encoded(template: Template) -> Template:
    """The template with its text as UTF-8 bytes: a read then joins bytes (a copy) instead of text of
    mixed widths that has to be encoded afterwards. A lone surrogate (hostile content) is written as a
    JSON escape, as core.json_bytes writes it: it can only stand inside a JSON string."""
    if isinstance(template, str):
        return template.encode("utf-8", "backslashreplace")
    if template[0] == _SECRET:
        return template
    if template[0] == _CAT:
        return (_CAT, tuple(_encoded(t) for t in template[1]))
    return (_SEQ, tuple(_encoded(t) for t in template[1]), template[2])


def compile_settings(settings: list[Any]) -> Template:
    """The template of a settings list (`[{"id": ..., "settingInstance": {...}}, ...]`), its text as
    UTF-8 bytes."""
    items: list[Template] = []
    for setting in settings:
        if isinstance(setting, dict):  # a content read serves nested entities without an etag (`vary`)
            setting = {k: v for k, v in setting.items() if k != "@odata.etag"}
        if isinstance(setting, dict) and "settingInstance" in setting:
            items.append(_obj(setting, {"settingInstance": _node(setting.get("settingInstance"))}))
        else:
            items.append(json_text(setting))
    return _encoded(_seq(items, True))


def render(template: Template, vault: Vault, rng: random.Random) -> bytes:
    """One read of a compiled settings list: UTF-8 JSON, reordered and re-encrypted."""
    out: list[bytes] = []
    stack: list[Any] = [template]
    while stack:
        t = stack.pop()
        if t.__class__ is bytes:
            out.append(t)
        elif t[0] == _CAT:
            stack.extend(reversed(t[1]))
        elif t[0] == _SEQ:
            items = list(t[1])
            rng.shuffle(items)  # only shuffled arrays stay _SEQ (see _seq)
            if t[2]:
                out.append(b"[" + b",".join(items) + b"]")
                continue
            pending: list[Any] = [b"]"]
            for n in range(len(items) - 1, 0, -1):
                pending.append(items[n])
                pending.append(b",")
            pending.append(items[0])
            pending.append(b"[")
            stack.extend(pending)
        else:
            out.append(json_text(vault.encrypt(t[1])).encode())
    return b"".join(out)
