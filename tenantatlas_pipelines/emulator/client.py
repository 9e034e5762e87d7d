"""`EmulatorClient`: drive an emulator that runs in another process through its admin API.

It mirrors the scripting half of `Emulator` (inject, objects, request log ...) so a test can be written
against either, and finds a running ``tenantatlas emulator serve`` through its ``emulator.json``.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .core import RequestRecord
from .data import TenantSpec
from .faults import Fault
from .server import STATE_FILE


def read_state_file(path: Path | str) -> dict[str, Any]:
    """The parsed state file; `path` may be the file or the state directory."""
    path = Path(path)
    if path.is_dir():
        path = path / STATE_FILE
    return json.loads(path.read_text(encoding="utf-8"))


class EmulatorClient:
    """Admin-API client for an emulator at `base_url` whose CA is `ca_path`."""

    def __init__(self, base_url: str, ca_path: Path | str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.ca_path = Path(ca_path)
        context = ssl.create_default_context(cafile=str(self.ca_path))
        self._http = httpx.Client(base_url=self.base_url + "/_emulator", verify=context, timeout=timeout)

    @classmethod
    def from_state_file(cls, path: Path | str, timeout: float = 10.0) -> EmulatorClient:
        data = read_state_file(path)
        return cls(data["base_url"], data["ca_path"], timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EmulatorClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None, missing_is_key_error: bool = False) -> Any:
        """One admin call; an error status raises RuntimeError (a 404 KeyError when asked, as the
        in-process Emulator raises for an unknown object, assignment or group)."""
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["content"] = json.dumps(body).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
        resp = self._http.request(method, path, **kwargs)
        if resp.status_code == 404 and missing_is_key_error:
            raise KeyError(resp.json().get("error", resp.text[:300]))
        if resp.status_code >= 400:
            raise RuntimeError(f"emulator admin {method} {path}: {resp.status_code} {resp.text[:300]}")
        return resp.json()

    @staticmethod
    def _obj_path(tenant_id: str, policy_type: str) -> str:
        return f"/objects/{quote(tenant_id, safe='')}/{quote(policy_type, safe='')}"

    # --- same names as Emulator -----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/state")

    @property
    def client_id(self) -> str:
        return self.state()["client_id"]

    @property
    def tenant_ids(self) -> list[str]:
        return [t["tenant_id"] for t in self.state()["tenants"]]

    def add_tenant(self, spec: TenantSpec) -> None:
        self._call("POST", "/tenants", spec.to_json())

    def inject(self, fault: Fault) -> None:
        self._call("POST", "/faults", fault.to_json())

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    @property
    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")

    def add_object(self, tenant_id: str, policy_type: str, payload: dict[str, Any] | None = None) -> str:
        return self._call("POST", self._obj_path(tenant_id, policy_type), payload)["id"]

    def remove_object(self, tenant_id: str, policy_type: str, external_id: str) -> None:
        path = f"{self._obj_path(tenant_id, policy_type)}/{quote(external_id, safe='')}"
        try:
            self._call("DELETE", path)
        except RuntimeError as exc:
            raise KeyError(str(exc)) from None

    def set_size(self, tenant_id: str, policy_type: str, n: int) -> None:
        self._call("PUT", f"{self._obj_path(tenant_id, policy_type)}/size", {"size": n})

    def objects(self, tenant_id: str, policy_type: str) -> list[dict[str, Any]]:
        return self._call("GET", self._obj_path(tenant_id, policy_type))

    def warm(self, tenant_id: str) -> int:
        """Have the emulator generate the tenant's content before it is read (see Emulator.warm)."""
        return int(self._call("POST", f"/warm/{quote(tenant_id, safe='')}")["objects"])

    @property
    def request_log(self) -> list[RequestRecord]:
        return [RequestRecord.from_json(r) for r in self._call("GET", "/requests")]

    def clear_log(self) -> None:
        self._call("DELETE", "/requests")

    # --- content scripting (same names as Emulator) -------------------------------------------------

    def _one(self, tenant_id: str, policy_type: str, external_id: str) -> str:
        return f"{self._obj_path(tenant_id, policy_type)}/{quote(external_id, safe='')}"

    def _call_404(self, method: str, path: str, body: Any = None) -> Any:
        return self._call(method, path, body, missing_is_key_error=True)

    def entity(self, tenant_id: str, policy_type: str, external_id: str) -> dict[str, Any]:
        return self._call_404("GET", self._one(tenant_id, policy_type, external_id))

    def update_object(self, tenant_id: str, policy_type: str, external_id: str,
                      fields: dict[str, Any]) -> dict[str, Any]:
        return self._call_404("PATCH", self._one(tenant_id, policy_type, external_id), fields)

    def rename_object(self, tenant_id: str, policy_type: str, external_id: str, name: str) -> dict[str, Any]:
        from ..policy_types import REGISTRY

        return self.update_object(tenant_id, policy_type, external_id,
                                  {REGISTRY[policy_type].name_field: name})

    def set_setting(self, tenant_id: str, policy_type: str, external_id: str, key: str,
                    value: Any) -> dict[str, Any]:
        return self._call_404("PUT", self._one(tenant_id, policy_type, external_id) + "/setting",
                              {"key": key, "value": value})

    def assignments(self, tenant_id: str, policy_type: str, external_id: str) -> list[dict[str, Any]]:
        return self._call_404("GET", self._one(tenant_id, policy_type, external_id) + "/assignments")

    def add_assignment(self, tenant_id: str, policy_type: str, external_id: str, kind: str, *,
                       group_id: str | None = None, filter_id: str | None = None, filter_type: str = "none",
                       intent: str | None = None) -> dict[str, Any]:
        return self._call_404("POST", self._one(tenant_id, policy_type, external_id) + "/assignments",
                              {"kind": kind, "group_id": group_id, "filter_id": filter_id,
                               "filter_type": filter_type, "intent": intent})

    def remove_assignment(self, tenant_id: str, policy_type: str, external_id: str, target: str) -> int:
        path = f"{self._one(tenant_id, policy_type, external_id)}/assignments/{quote(target, safe='')}"
        return self._call_404("DELETE", path)["removed"]

    def settings(self, tenant_id: str, external_id: str) -> list[dict[str, Any]]:
        return self.entity(tenant_id, "settingsCatalogPolicy", external_id)["settings"]

    def groups(self, tenant_id: str) -> list[dict[str, Any]]:
        return self._call_404("GET", f"/groups/{quote(tenant_id, safe='')}")

    def add_group(self, tenant_id: str, fields: dict[str, Any] | None = None) -> str:
        return self._call_404("POST", f"/groups/{quote(tenant_id, safe='')}", fields or {})["id"]

    def update_group(self, tenant_id: str, group_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return self._call_404("PATCH", f"/groups/{quote(tenant_id, safe='')}/{quote(group_id, safe='')}",
                              fields)

    def remove_group(self, tenant_id: str, group_id: str) -> None:
        self._call_404("DELETE", f"/groups/{quote(tenant_id, safe='')}/{quote(group_id, safe='')}")

    def reencrypt(self) -> None:
        self._call("POST", "/reencrypt")

    def set_volatile_lists(self, on: bool) -> None:
        self._call("PUT", "/volatile", {"lists": on})
