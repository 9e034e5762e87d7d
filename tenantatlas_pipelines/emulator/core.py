"""The emulator's shared state and the plain request/response types its endpoints speak.

Endpoints (entra.py, graph.py, admin.py) are functions of ``(EmulatorState, Request) -> Response`` with
no HTTP machinery in them, which keeps them testable and lets server.py stay a thin transport.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..policy_types import REGISTRY
from .data import Collection, TenantSpec
from .directory import Directory
from .faults import FaultBook
from .payloads import Refs
from .present import Vault

JSON_CT = "application/json; charset=utf-8"
GRAPH_CT = ("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
            "charset=utf-8")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str  # raw query string, without "?"
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


@dataclass
class Response:
    """An answer plus what the request log needs to know about it."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = JSON_CT
    reset: bool = False  # drop the connection instead of answering
    endpoint: str = "other"  # discovery | token | graph | admin | other
    tenant_id: str | None = None
    policy_type: str | None = None
    client_id: str | None = None
    fault: str | None = None
    items: int = 0
    batch: str | None = None  # set on the inner requests of a $batch: the outer request's id

    @property
    def retry_after(self) -> str | None:
        return next((v for k, v in self.headers if k.lower() == "retry-after"), None)


def json_bytes(data: Any) -> bytes:
    """UTF-8 JSON as Graph sends it; a lone surrogate (hostile test payloads) goes out \\u-escaped."""
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data, ensure_ascii=True, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the emulator saw it. Bodies are never recorded (they carry client secrets)."""

    time: float  # time.monotonic() in the emulator's process
    wall_time: float  # time.time()
    method: str
    path: str
    query: str
    endpoint: str
    tenant_id: str | None
    policy_type: str | None
    status: int
    retry_after: str | None
    client_id: str | None
    fault: str | None = None
    items: int = 0
    batch: str | None = None  # inner request of this $batch (the outer request's request-id)
    # Seconds the emulator spent producing the answer (routing, generating, serialising), before the
    # configured latency is slept: the service time a benchmark reports as a floor that is not the client's.
    service_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RequestRecord:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class EmulatorState:
    """Tenants, collections, faults, rate-limit windows and the request log, behind one lock."""

    def __init__(self, tenants: Iterable[TenantSpec], client_id: str, client_secret: str, seed: int,
                 latency_ms: float, token_lifetime: int) -> None:
        self.lock = threading.RLock()
        self.client_id = client_id
        self.client_secret = client_secret
        self.seed = seed
        self.latency_ms = latency_ms
        self.token_lifetime = token_lifetime
        self.base_url = ""
        self.signing_key = secrets.token_bytes(32)  # per process: tokens never cross emulators
        self.tenants: dict[str, TenantSpec] = {}
        self.collections: dict[tuple[str, str], Collection] = {}
        self.directories: dict[str, Directory] = {}
        self._refs: dict[str, tuple[tuple[int, ...], Refs]] = {}
        self.vault = Vault()
        self.volatile_lists = False  # True: plain listings vary like content reads (see present.py)
        self.faults = FaultBook()
        self.log: list[RequestRecord] = []
        self.certificates: dict[str, Any] = {}  # sha256 / sha1 thumbprint (hex) -> x509 certificate
        self._windows: dict[str, deque[float]] = {}
        self._rate_429s: dict[str, int] = {}
        for spec in tenants:
            self.add_tenant(spec)

    # --- tenants and collections ----------------------------------------------------------------------

    def add_tenant(self, spec: TenantSpec) -> None:
        with self.lock:
            for other in self.tenants.values():
                if other.key == spec.key and other.tenant_id != spec.tenant_id:
                    raise ValueError(f"tenant key {spec.key!r} is already used by {other.tenant_id}")
            self.tenants[spec.tenant_id] = spec
            tid = spec.tenant_id
            for ptype in REGISTRY:
                self.collections[(tid, ptype)] = Collection(
                    self.seed, tid, ptype, spec.size_of(ptype), refs=lambda tid=tid: self.refs(tid),  # type: ignore[misc]
                    assigned_ratio=spec.assigned_ratio)
            self.directories[tid] = Directory(self.seed, tid, spec.groups)

    def refs(self, tenant_id: str) -> Refs:
        """What objects of a tenant reference, sized by its current generated collections and groups.

        Called once per generated object, so the Refs is cached and rebuilt only when a size changed.
        """
        c = self.collections
        sizes = (c[(tenant_id, "roleScopeTag")].size, c[(tenant_id, "assignmentFilter")].size,
                 self.directories[tenant_id].count, c[(tenant_id, "mobileApp")].size)
        cached = self._refs.get(tenant_id)
        if cached is None or cached[0] != sizes:
            refs = Refs(self.seed, tenant_id, scope_tags=sizes[0], filters=sizes[1], groups=sizes[2],
                        apps=sizes[3])
            cached = (sizes, refs)
            self._refs[tenant_id] = cached
        return cached[1]

    def directory(self, tenant_id: str) -> Directory:
        with self.lock:
            if tenant_id not in self.directories:
                raise KeyError(f"unknown tenant {tenant_id!r}")
            return self.directories[tenant_id]

    def tenant_by_alias(self, alias: str) -> TenantSpec | None:
        """A tenant by GUID or initial domain (``key.onmicrosoft.com``), case-insensitively, as Entra does."""
        alias = alias.lower()
        with self.lock:
            spec = self.tenants.get(alias)
            if spec is not None:
                return spec
            return next((t for t in self.tenants.values() if t.domain == alias), None)

    def collection(self, tenant_id: str, policy_type: str) -> Collection:
        with self.lock:
            if tenant_id not in self.tenants:
                raise KeyError(f"unknown tenant {tenant_id!r}")
            if policy_type not in REGISTRY:
                raise KeyError(f"unknown policy type {policy_type!r}")
            return self.collections[(tenant_id, policy_type)]

    def add_object(self, tenant_id: str, policy_type: str, payload: Mapping[str, Any] | None = None) -> str:
        with self.lock:
            return self.collection(tenant_id, policy_type).add(dict(payload) if payload is not None else None)

    def remove_object(self, tenant_id: str, policy_type: str, external_id: str) -> bool:
        with self.lock:
            return self.collection(tenant_id, policy_type).remove(external_id)

    def set_size(self, tenant_id: str, policy_type: str, n: int) -> None:
        with self.lock:
            self.collection(tenant_id, policy_type).set_size(n)

    def objects(self, tenant_id: str, policy_type: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.collection(tenant_id, policy_type))

    def warm(self, tenant_id: str) -> int:
        """Generate every collection of a tenant ahead of its reads (Collection.warm); objects warmed."""
        with self.lock:
            if tenant_id not in self.tenants:
                raise KeyError(f"unknown tenant {tenant_id!r}")
            return sum(self.collections[(tenant_id, k)].warm() for k in REGISTRY)

    def describe(self) -> dict[str, Any]:
        """What another process needs to find and use this emulator (never the client secret)."""
        with self.lock:
            tenants = []
            for spec in self.tenants.values():
                data = spec.to_json()
                data["counts"] = {k: self.collections[(spec.tenant_id, k)].count() for k in REGISTRY}
                data["group_count"] = self.directories[spec.tenant_id].live_count()
                tenants.append(data)
        return {"base_url": self.base_url, "authority_host": self.base_url, "graph_url": self.base_url,
                "client_id": self.client_id, "seed": self.seed, "tenants": tenants,
                "faults": self.faults.snapshot()}

    # --- rate limiting --------------------------------------------------------------------------------

    def rate_limited(self, spec: TenantSpec) -> tuple[bool, float, bool]:
        """(over the limit?, seconds until a slot frees, send Retry-After?) for one Graph request.

        Sliding window over accepted requests only, so a client that backs off gets through again.
        """
        if spec.rate_limit is None:
            return False, 0.0, False
        limit, window = spec.rate_limit
        now = time.monotonic()
        with self.lock:
            q = self._windows.setdefault(spec.tenant_id, deque())
            while q and q[0] <= now - window:
                q.popleft()
            if len(q) < limit:
                q.append(now)
                return False, 0.0, False
            n = self._rate_429s.get(spec.tenant_id, 0)
            self._rate_429s[spec.tenant_id] = n + 1
            mode = spec.rate_limit_retry_after
            send = mode == "always" or (mode == "alternate" and n % 2 == 0)
            return True, max(0.001, q[0] + window - now), send

    # --- request log ----------------------------------------------------------------------------------

    def record(self, request: Request, response: Response, started: float, wall: float,
               service_s: float = 0.0) -> None:
        if response.endpoint == "admin":
            return
        rec = RequestRecord(time=started, wall_time=wall, method=request.method, path=request.path,
                            query=request.query if response.endpoint != "token" else "",
                            endpoint=response.endpoint, tenant_id=response.tenant_id,
                            policy_type=response.policy_type, status=response.status,
                            retry_after=response.retry_after, client_id=response.client_id,
                            fault=response.fault, items=response.items, batch=response.batch,
                            service_s=service_s)
        with self.lock:
            self.log.append(rec)
