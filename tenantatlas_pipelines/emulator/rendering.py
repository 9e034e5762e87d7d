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

# A template: literal JSON text, or one of
#   (_SEQ, items, shuffled)    a JSON array of templates, reordered per read when `shuffled`
#   (_OBJ, ((prefix, template), ...))    a JSON object; prefix is the member's `"key":`
#   (_SECRET, plaintext)        a JSON string: the plaintext encrypted for this read
Template = str | tuple[Any, ...]
_SEQ, _OBJ, _SECRET = 0, 1, 2
_SECRET_SUFFIX = "SecretSettingValue"


def json_text(value: Any) -> str:
    """Compact JSON text, as the emulator writes bodies (core.json_bytes before encoding)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _obj(node: Mapping[str, Any], overrides: dict[str, Template]) -> Template:
    """`node` as an object template: members in their order, `overrides` replacing some members'
    values (members `overrides` adds are appended, as an assignment to a dict would)."""
    parts: list[tuple[str, Template]] = []
    for key, value in node.items():
        parts.append((json_text(key) + ":", overrides.pop(key) if key in overrides else json_text(value)))
    parts.extend((json_text(key) + ":", value) for key, value in overrides.items())
    if all(isinstance(t, str) for _, t in parts):
        return "{" + ",".join(p + t for p, t in parts) + "}"  # type: ignore[operator]
    return (_OBJ, tuple(parts))


def _seq(items: list[Template], shuffled: bool) -> Template:
    if not shuffled or len(items) < 2:
        if all(isinstance(t, str) for t in items):
            return "[" + ",".join(items) + "]"  # type: ignore[arg-type]
        return (_SEQ, tuple(items), False)
    return (_SEQ, tuple(items), True)


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


def compile_settings(settings: list[Any]) -> Template:
    """The template of a settings list (`[{"id": ..., "settingInstance": {...}}, ...]`)."""
    items: list[Template] = []
    for setting in settings:
        if isinstance(setting, dict):  # a content read serves nested entities without an etag (`vary`)
            setting = {k: v for k, v in setting.items() if k != "@odata.etag"}
        if isinstance(setting, dict) and "settingInstance" in setting:
            items.append(_obj(setting, {"settingInstance": _node(setting.get("settingInstance"))}))
        else:
            items.append(json_text(setting))
    return _seq(items, True)


def render(template: Template, vault: Vault, rng: random.Random) -> str:
    """One read of a compiled settings list: JSON text, reordered and re-encrypted."""
    out: list[str] = []
    stack: list[Any] = [template]
    while stack:
        t = stack.pop()
        if isinstance(t, str):
            out.append(t)
        elif t[0] == _OBJ:
            parts = t[1]
            pending: list[Any] = ["}"]
            for n in range(len(parts) - 1, -1, -1):
                prefix, value = parts[n]
                pending.append(value)
                pending.append(("," if n else "{") + prefix)
            stack.extend(pending)
        elif t[0] == _SEQ:
            items = list(t[1])
            if t[2]:
                rng.shuffle(items)
            if not items:
                out.append("[]")
                continue
            pending = ["]"]
            for n in range(len(items) - 1, -1, -1):
                pending.append(items[n])
                pending.append("," if n else "[")
            stack.extend(pending)
        else:
            out.append(json_text(vault.encrypt(t[1])))
    return "".join(out)
