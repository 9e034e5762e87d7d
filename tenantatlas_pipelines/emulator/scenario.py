"""Scripted changes to a tenant's content, for drift, compare and dependency scenarios.

The Emulator facade and the admin API both call these, so a test scripts the same thing in-process or
from another process: change a setting, rename, add or remove an assignment, add or remove a group.
Every function takes the state lock; ids not found raise KeyError (admin API: 404).
"""

from __future__ import annotations

import copy
from typing import Any

from ..policy_types import REGISTRY
from .assignments import ASSIGNABLE, make_assignment
from .catalog import find_instance, set_instance_value, set_intent_value
from .core import EmulatorState
from .data import NAV_KEYS, Collection


def _locate(state: EmulatorState, tenant_id: str, policy_type: str,
            external_id: str) -> tuple[Collection, int]:
    coll = state.collection(tenant_id, policy_type)
    slot = coll.slot_of(external_id)
    if slot is None:
        raise KeyError(f"no object {external_id!r} in {tenant_id}/{policy_type}")
    return coll, slot


def entity(state: EmulatorState, tenant_id: str, policy_type: str, external_id: str) -> dict[str, Any]:
    """The stored object with its assignments (and settings, for settings catalog), secrets in clear:
    what a test compares a snapshot against."""
    with state.lock:
        coll, slot = _locate(state, tenant_id, policy_type, external_id)
        out = coll.payload_at(slot) or {}
        out["assignments"] = coll.nav_at(slot, "assignments")
        if policy_type in ("settingsCatalogPolicy", "endpointSecurityIntent"):
            out["settings"] = coll.nav_at(slot, "settings")
        if policy_type == "groupPolicyConfiguration":
            out["definitionValues"] = coll.nav_at(slot, "definitionValues")
        return copy.deepcopy(out)


def update_object(state: EmulatorState, tenant_id: str, policy_type: str, external_id: str,
                  fields: dict[str, Any]) -> dict[str, Any]:
    """Merge top-level `fields` into an object (rename: ``{"displayName": ...}``; settings catalog:
    ``{"name": ...}``). ``assignments`` / ``settings`` replace those lists. The id cannot change."""
    if "id" in fields and fields["id"] != external_id:
        raise ValueError("an object's id cannot be changed; remove it and add another")
    with state.lock:
        coll, _ = _locate(state, tenant_id, policy_type, external_id)
        payload = coll.payload_at(coll.slot_of(external_id))  # type: ignore[arg-type]
        assert payload is not None
        payload.update({k: copy.deepcopy(v) for k, v in fields.items() if k not in NAV_KEYS})
        coll.add(payload)
        for key in NAV_KEYS:
            if key in fields:
                coll.set_nav(external_id, key, list(fields[key]))
        return entity(state, tenant_id, policy_type, external_id)


def rename_object(state: EmulatorState, tenant_id: str, policy_type: str, external_id: str,
                  name: str) -> dict[str, Any]:
    return update_object(state, tenant_id, policy_type, external_id, {REGISTRY[policy_type].name_field: name})


def set_setting(state: EmulatorState, tenant_id: str, policy_type: str, external_id: str, key: str,
                value: Any) -> dict[str, Any]:
    """Change one setting's value. `key` is a ``settingDefinitionId`` (settings catalog, anywhere in the
    trees), a ``definitionId`` (endpoint-security intents), an ADMX definition id or display name
    (administrative templates: a bool enables/disables, another value goes to its first presentation),
    an ``omaUri`` (custom device configurations), or else a top-level property name."""
    with state.lock:
        coll, slot = _locate(state, tenant_id, policy_type, external_id)
        if policy_type == "settingsCatalogPolicy":
            settings = coll.nav_at(slot, "settings")
            instance = find_instance(settings, key)
            if instance is None:
                raise KeyError(f"policy {external_id} has no setting {key!r}")
            set_instance_value(instance, value)
            coll.set_nav(external_id, "settings", settings)
            return entity(state, tenant_id, policy_type, external_id)
        if policy_type == "endpointSecurityIntent":
            settings = coll.nav_at(slot, "settings")
            set_intent_value(settings, key, value)
            coll.set_nav(external_id, "settings", settings)
            return entity(state, tenant_id, policy_type, external_id)
        if policy_type == "groupPolicyConfiguration":
            values = coll.nav_at(slot, "definitionValues")
            _set_definition_value(values, key, value)
            coll.set_nav(external_id, "definitionValues", values)
            return entity(state, tenant_id, policy_type, external_id)
        payload = coll.payload_at(slot) or {}
        oma = [s for s in payload.get("omaSettings") or [] if isinstance(s, dict) and s.get("omaUri") == key]
        if oma:
            oma[0]["value"] = value
            return update_object(state, tenant_id, policy_type, external_id,
                                 {"omaSettings": payload["omaSettings"]})
        if key not in payload:
            raise KeyError(f"object {external_id} has no property or OMA-URI {key!r}")
        return update_object(state, tenant_id, policy_type, external_id, {key: value})


def _set_definition_value(values: list[dict[str, Any]], key: str, value: Any) -> None:
    """An administrative-template setting by definition id or display name: a bool switches it on or
    off; anything else becomes its first presentation's value (a list: its ``values``)."""
    def names(v: dict[str, Any]) -> tuple[str, str]:
        definition = v.get("definition") or {}
        return str(definition.get("id", "")).lower(), str(definition.get("displayName", "")).lower()

    match = next((v for v in values if key.lower() in names(v)), None)
    if match is None:
        raise KeyError(f"no administrative-template setting {key!r} in this policy")
    if isinstance(value, bool):
        match["enabled"] = value
        return
    presentations = match.get("presentationValues") or []
    if not presentations:
        raise ValueError(f"setting {key!r} has no presentation to take a value; use true/false")
    presentations[0]["values" if isinstance(value, list) else "value"] = value


def assignments(state: EmulatorState, tenant_id: str, policy_type: str,
                external_id: str) -> list[dict[str, Any]]:
    with state.lock:
        coll, slot = _locate(state, tenant_id, policy_type, external_id)
        return coll.nav_at(slot, "assignments")


def add_assignment(state: EmulatorState, tenant_id: str, policy_type: str, external_id: str, kind: str, *,
                   group_id: str | None = None, filter_id: str | None = None, filter_type: str = "none",
                   intent: str | None = None) -> dict[str, Any]:
    """Assign an object (kind: group | exclude | allDevices | allLicensedUsers); returns the assignment.
    Assigning the same target twice replaces the earlier assignment, as Intune does."""
    if policy_type not in ASSIGNABLE:
        raise ValueError(f"{policy_type} objects have no assignments")
    with state.lock:
        coll, slot = _locate(state, tenant_id, policy_type, external_id)
        new = make_assignment(policy_type, external_id, kind, group_id=group_id, filter_id=filter_id,
                              filter_type=filter_type, intent=intent)
        current = [a for a in coll.nav_at(slot, "assignments") if a.get("id") != new["id"]]
        coll.set_nav(external_id, "assignments", [*current, new])
        return new


def remove_assignment(state: EmulatorState, tenant_id: str, policy_type: str, external_id: str,
                      target: str) -> int:
    """Remove the assignments whose id, group id or target kind (``allDevices``, ``allLicensedUsers``)
    is `target`; returns how many were removed (KeyError when none)."""
    with state.lock:
        coll, slot = _locate(state, tenant_id, policy_type, external_id)
        current = coll.nav_at(slot, "assignments")

        def matches(a: dict[str, Any]) -> bool:
            t = a.get("target") or {}
            kind = str(t.get("@odata.type", "")).rsplit(".", 1)[-1].replace("AssignmentTarget", "")
            return target in (a.get("id"), t.get("groupId"), kind)

        kept = [a for a in current if not matches(a)]
        if len(kept) == len(current):
            raise KeyError(f"object {external_id} has no assignment {target!r}")
        coll.set_nav(external_id, "assignments", kept)
        return len(current) - len(kept)


def settings(state: EmulatorState, tenant_id: str, external_id: str) -> list[dict[str, Any]]:
    with state.lock:
        coll, slot = _locate(state, tenant_id, "settingsCatalogPolicy", external_id)
        return coll.nav_at(slot, "settings")


def groups(state: EmulatorState, tenant_id: str) -> list[dict[str, Any]]:
    with state.lock:
        return state.directory(tenant_id).all()


def add_group(state: EmulatorState, tenant_id: str, fields: dict[str, Any] | None = None) -> str:
    with state.lock:
        return state.directory(tenant_id).add(fields)


def update_group(state: EmulatorState, tenant_id: str, group_id: str,
                 fields: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        return state.directory(tenant_id).update(group_id, fields)


def remove_group(state: EmulatorState, tenant_id: str, group_id: str) -> None:
    """The group is gone from Entra: getByIds omits it and groups/{id} is 404. Assignments that
    reference it stay (dangling), as in a real tenant."""
    with state.lock:
        if not state.directory(tenant_id).remove(group_id):
            raise KeyError(f"no group {group_id!r} in {tenant_id}")
