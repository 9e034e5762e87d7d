"""The admin surface under ``/_emulator/``: script scenarios from another process (tests, CLI, demos).

JSON in, JSON out, no authentication (the emulator binds to loopback). Admin calls never appear in the
request log, so assertions on Graph traffic are not polluted by the test's own scripting.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, unquote

from ..policy_types import REGISTRY
from . import scenario
from .core import EmulatorState, Request, Response, json_bytes
from .data import TenantSpec
from .faults import Fault

PREFIX = "/_emulator"


def _ok(data: Any, status: int = 200) -> Response:
    return Response(status, json_bytes(data), endpoint="admin")


def _fail(status: int, message: str) -> Response:
    return Response(status, json_bytes({"error": message}), endpoint="admin")


def _body(request: Request) -> Any:
    if not request.body:
        return None
    return json.loads(request.body.decode("utf-8"))


def handle_admin(state: EmulatorState, request: Request) -> Response:
    """Route one admin call. Unknown routes are 404, bad input 400 with a readable message."""
    parts = [unquote(p) for p in request.path[len(PREFIX):].strip("/").split("/") if p]
    method = request.method
    try:
        return _route(state, request, method, parts)
    except (ValueError, TypeError, KeyError) as exc:
        return _fail(400, f"{type(exc).__name__}: {exc}")


def _route(state: EmulatorState, request: Request, method: str, parts: list[str]) -> Response:
    head = parts[0] if parts else ""
    if head == "state" and method == "GET":
        return _ok(state.describe())
    if head == "faults":
        if method == "GET":
            return _ok(state.faults.snapshot())
        if method == "POST":
            body = _body(request)
            faults = body if isinstance(body, list) else [body]
            for item in faults:
                state.faults.add(Fault.from_json(item))
            return _ok({"injected": len(faults)}, 201)
        if method == "DELETE":
            state.faults.clear()
            return _ok({"cleared": True})
    if head == "requests":
        if method == "GET":
            with state.lock:
                records = [r.to_json() for r in state.log]
            since = dict(parse_qsl(request.query)).get("since")
            if since is not None:
                records = records[int(since):]
            return _ok(records)
        if method == "DELETE":
            with state.lock:
                state.log.clear()
            return _ok({"cleared": True})
    if head == "tenants":
        if method == "GET":
            return _ok([t.to_json() for t in state.tenants.values()])
        if method == "POST":
            spec = TenantSpec.from_json(_body(request))
            state.add_tenant(spec)
            return _ok(spec.to_json(), 201)
    if head == "objects":
        return _objects(state, request, method, parts[1:])
    if head == "groups":
        return _groups(state, request, method, parts[1:])
    if head == "volatile" and method == "PUT":
        body = _body(request)
        state.volatile_lists = bool(body.get("lists") if isinstance(body, dict) else body)
        return _ok({"lists": state.volatile_lists})
    if head == "warm" and method == "POST" and len(parts) == 2:
        if parts[1] not in state.tenants:
            return _fail(404, f"unknown tenant {parts[1]}")
        return _ok({"objects": state.warm(parts[1])})
    if head == "reencrypt" and method == "POST":
        state.vault.rotate()
        return _ok({"rotated": True})
    return _fail(404, f"no admin route {method} {request.path}")


def _objects(state: EmulatorState, request: Request, method: str, parts: list[str]) -> Response:
    body = _body(request) if method in ("POST", "PUT", "DELETE", "PATCH") else None
    if len(parts) < 2 and isinstance(body, dict):  # flat form: {"tenant_id", "policy_type", ...}
        parts = [body["tenant_id"], body["policy_type"], *([body["id"]] if "id" in body else [])]
        body = body.get("payload", body.get("size"))
    if len(parts) < 2:
        return _fail(400, "use /_emulator/objects/{tenant_id}/{policy_type}[/{id}|/size]")
    tenant_id, policy_type = parts[0], parts[1]
    if tenant_id not in state.tenants:
        return _fail(404, f"unknown tenant {tenant_id}")
    if policy_type not in REGISTRY:
        return _fail(404, f"unknown policy type {policy_type}")
    rest = parts[2:]
    if method == "GET" and not rest:
        return _ok(state.objects(tenant_id, policy_type))
    if method == "POST" and not rest:
        return _ok({"id": state.add_object(tenant_id, policy_type, body)}, 201)
    if method == "PUT" and rest == ["size"]:
        size = body["size"] if isinstance(body, dict) else body
        state.set_size(tenant_id, policy_type, int(size))
        return _ok({"size": int(size)})
    if method == "DELETE" and len(rest) == 1:
        if not state.remove_object(tenant_id, policy_type, rest[0]):
            return _fail(404, f"no object {rest[0]} in {tenant_id}/{policy_type}")
        return _ok({"removed": rest[0]})
    if rest:
        try:
            return _object(state, method, tenant_id, policy_type, rest, body)
        except KeyError as exc:
            return _fail(404, str(exc.args[0]) if exc.args else "not found")
    return _fail(404, f"no admin route {method} {request.path}")


def _object(state: EmulatorState, method: str, tid: str, ptype: str, rest: list[str], body: Any) -> Response:
    """Content scripting of one object: /objects/{tid}/{type}/{id}[/setting|/assignments[/{target}]]."""
    oid, sub = rest[0], rest[1:]
    if method == "GET" and not sub:
        return _ok(scenario.entity(state, tid, ptype, oid))
    if method == "PATCH" and not sub:
        return _ok(scenario.update_object(state, tid, ptype, oid, dict(body or {})))
    if method == "PUT" and sub == ["setting"]:
        if not isinstance(body, dict) or "key" not in body or "value" not in body:
            return _fail(400, 'body must be {"key": ..., "value": ...}')
        return _ok(scenario.set_setting(state, tid, ptype, oid, str(body["key"]), body["value"]))
    if sub == ["assignments"]:
        if method == "GET":
            return _ok(scenario.assignments(state, tid, ptype, oid))
        if method == "POST":
            b = dict(body or {})
            kind = b.pop("kind", None)
            if not isinstance(kind, str):
                return _fail(400, 'body must name the assignment "kind" (group, exclude, allDevices, '
                                  'allLicensedUsers)')
            return _ok(scenario.add_assignment(state, tid, ptype, oid, kind, **b), 201)
    if method == "DELETE" and len(sub) == 2 and sub[0] == "assignments":
        return _ok({"removed": scenario.remove_assignment(state, tid, ptype, oid, sub[1])})
    return _fail(404, f"no admin route {method} .../{'/'.join(rest)}")


def _groups(state: EmulatorState, request: Request, method: str, parts: list[str]) -> Response:
    """/groups/{tid}[/{group_id}]: list, add, change, remove Entra groups."""
    if not parts or parts[0] not in state.tenants:
        return _fail(404, f"unknown tenant {parts[0] if parts else ''}")
    tid, rest = parts[0], parts[1:]
    body = _body(request) if method in ("POST", "PATCH") else None
    try:
        if method == "GET" and not rest:
            return _ok(scenario.groups(state, tid))
        if method == "POST" and not rest:
            return _ok({"id": scenario.add_group(state, tid, body)}, 201)
        if method == "PATCH" and len(rest) == 1:
            return _ok(scenario.update_group(state, tid, rest[0], dict(body or {})))
        if method == "DELETE" and len(rest) == 1:
            scenario.remove_group(state, tid, rest[0])
            return _ok({"removed": rest[0]})
    except KeyError as exc:
        return _fail(404, str(exc.args[0]) if exc.args else "not found")
    return _fail(404, f"no admin route {method} {request.path}")
