"""The HTTPS transport and the `Emulator` facade: one TLS port for Entra, Graph and the admin API.

Built on the standard library (``ThreadingHTTPServer`` + ``ssl``) on purpose: no extra dependency, real
TLS, HTTP/1.1 keep-alive with Content-Length (what httpx and requests expect), one thread per connection.
The TLS handshake runs in the connection's thread, so one slow client never blocks ``accept``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import socketserver
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from . import scenario
from .admin import PREFIX as ADMIN_PREFIX
from .admin import handle_admin
from .certs import TlsFiles, make_tls_files, server_context
from .core import EmulatorState, Request, RequestRecord, Response, json_bytes
from .data import DEMO_TENANTS, TenantSpec
from .entra import handle_discovery, handle_token
from .faults import Fault
from .graph import VERSIONS, handle_graph

DEFAULT_CLIENT_ID = "00000000-0000-0000-0000-00000000c1d0"
DEFAULT_CLIENT_SECRET = "emulator-secret"  # a well-known test value, not a credential
STATE_FILE = "emulator.json"

_DISCOVERY = re.compile(r"^/([^/]+)(?:/v2\.0)?/\.well-known/openid-configuration$")
_TOKEN = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")


def dispatch(state: EmulatorState, request: Request) -> Response:
    """Route one request to Entra, Graph or the admin API."""
    path = request.path
    if path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
        return handle_admin(state, request)
    m = _DISCOVERY.match(path)
    if m and request.method in ("GET", "HEAD"):
        return handle_discovery(state, request, m.group(1))
    m = _TOKEN.match(path)
    if m:
        return handle_token(state, request, m.group(1))
    if path.lstrip("/").split("/", 1)[0] in VERSIONS or path.count("/") >= 2:
        return handle_graph(state, request)
    return Response(404, json_bytes({"error": {"code": "NotFound", "message": f"No route for {path[:100]}"}}))


class _Reset(Exception):
    """Raised to abandon a connection after arranging for a TCP reset."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence stderr logging: the request log is the record (and it never contains bodies)."""

    def _handle(self) -> None:
        started, wall = time.monotonic(), time.time()
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        request = Request(self.command, path, query, headers, body)
        try:
            response = dispatch(state, request)
        except Exception as exc:  # an emulator bug must look like a server error, not a hang
            response = Response(500, json_bytes({"error": {"code": "InternalServerError",
                                                           "message": f"emulator bug: {exc!r}"}}))
        service_s = time.monotonic() - started
        if response.endpoint != "admin":
            delay = state.latency_ms + state.faults.latency_ms(response.tenant_id, response.policy_type)
            if delay > 0:
                time.sleep(delay / 1000.0)
        state.record(request, response, started, wall, service_s)
        if response.reset:
            self._reset()
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        # One write for headers and body: one TLS record burst per answer.
        self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
        if self.command != "HEAD":
            self._headers_buffer.append(response.body)  # type: ignore[attr-defined]
        self.flush_headers()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle

    def _reset(self) -> None:
        try:  # SO_LINGER 0: closing sends RST, which clients see as "connection reset by peer"
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        self.close_connection = True
        raise _Reset


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, state: EmulatorState) -> None:
        self.context = context
        self.state = state
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn), which can stall without a network.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # Headers and body go out as separate writes; without NODELAY, Nagle + delayed ACK add ~40 ms.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._conns_lock:
            self._conns.add(tls)
        return tls, addr

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client hang-ups, TLS failures and scripted resets are normal here; keep stderr clean."""

    def close_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class Emulator:
    """Microsoft Graph + Entra ID on one local HTTPS port, for tests and demos.

    The production client (MSAL for tokens, httpx for Graph) talks to it unchanged: point the authority
    host and the Graph host at `base_url` and trust `ca_path`. Everything is deterministic for a given
    seed; faults and tenant changes are scripted through this object or the admin API.
    """

    def __init__(self, state_dir: Path | None = None, tenants: Iterable[TenantSpec] = DEMO_TENANTS,
                 client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
                 latency_ms: float = 0.0, seed: int = 0, host: str = "127.0.0.1", port: int = 0,
                 token_lifetime: int = 3599) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tenantatlas-emulator-")
            state_dir = Path(self._tmp.name)
        self.state_dir = Path(state_dir)
        self.host, self.port = host, port
        self.state = EmulatorState(tenants, client_id, client_secret, seed, latency_ms, token_lifetime)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._tls: TlsFiles | None = None

    # --- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Emulator:
        if self._server is not None:
            return self
        self._tls = make_tls_files(self.state_dir)
        self._server = _Server((self.host, self.port), server_context(self._tls), self.state)
        self.port = int(self._server.server_address[1])
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.state.base_url = f"https://{host}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"emulator-{self.port}", daemon=True)
        self._thread.start()
        self._write_state_file()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.state_file.unlink(missing_ok=True)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_state_file(self) -> None:
        data = self.describe()
        data.pop("faults", None)
        data.update(ca_path=str(self.ca_path), pid=os.getpid())
        tmp = self.state_file.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.state_file)  # atomic: a reader never sees half a file

    # --- where it is ----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self.state.base_url:
            raise RuntimeError("the emulator is not started")
        return self.state.base_url

    @property
    def authority_host(self) -> str:
        return self.base_url

    @property
    def graph_url(self) -> str:
        return self.base_url

    @property
    def ca_path(self) -> Path:
        if self._tls is None:
            raise RuntimeError("the emulator is not started")
        return self._tls.ca_path

    @property
    def state_file(self) -> Path:
        return self.state_dir / STATE_FILE

    @property
    def client_id(self) -> str:
        return self.state.client_id

    @property
    def client_secret(self) -> str:
        return self.state.client_secret

    def authority(self, tenant_id: str) -> str:
        """The MSAL authority URL of a tenant."""
        return f"{self.base_url}/{tenant_id}"

    @property
    def scope(self) -> str:
        return f"{self.graph_url}/.default"

    def client_env(self) -> dict[str, str]:
        """The TENANTATLAS_* settings that point the production client (GraphSettings.from_env) here."""
        return {
            "TENANTATLAS_AUTHORITY_HOST": self.authority_host,
            "TENANTATLAS_GRAPH_URL": self.graph_url,
            "TENANTATLAS_CA_BUNDLE": str(self.ca_path),
            "TENANTATLAS_CLIENT_ID": self.client_id,
            "TENANTATLAS_CLIENT_SECRET": self.client_secret,
        }

    # --- tenants and objects --------------------------------------------------------------------------

    @property
    def tenant_ids(self) -> list[str]:
        with self.state.lock:
            return list(self.state.tenants)

    @property
    def tenants(self) -> Mapping[str, TenantSpec]:
        with self.state.lock:
            return dict(self.state.tenants)

    def tenant(self, key_or_id: str) -> TenantSpec:
        """A tenant by key or GUID."""
        with self.state.lock:
            for spec in self.state.tenants.values():
                if key_or_id in (spec.key, spec.tenant_id):
                    return spec
        raise KeyError(f"unknown tenant {key_or_id!r}")

    def add_tenant(self, spec: TenantSpec) -> None:
        self.state.add_tenant(spec)
        if self._server is not None:
            self._write_state_file()

    def add_object(self, tenant_id: str, policy_type: str, payload: dict[str, Any] | None = None) -> str:
        """Add an object (generated when payload is None); an existing id is replaced in place."""
        return self.state.add_object(tenant_id, policy_type, payload)

    def remove_object(self, tenant_id: str, policy_type: str, external_id: str) -> None:
        if not self.state.remove_object(tenant_id, policy_type, external_id):
            raise KeyError(f"no object {external_id!r} in {tenant_id}/{policy_type}")

    def set_size(self, tenant_id: str, policy_type: str, n: int) -> None:
        """Resize the generated part of a collection (added objects stay)."""
        self.state.set_size(tenant_id, policy_type, n)

    def warm(self, tenant_id: str) -> int:
        """Generate the tenant's content now instead of on each read (it is generated on demand, which
        keeps a huge tenant cheap): afterwards reads serve it as Graph serves stored content, and the
        time a benchmark measures is not the emulator's generating. Returns the objects warmed."""
        return self.state.warm(tenant_id)

    def objects(self, tenant_id: str, policy_type: str) -> list[dict[str, Any]]:
        """The current payloads, in listing order, without any fault applied."""
        return self.state.objects(tenant_id, policy_type)

    # --- content scripting (scenario.py; the same names exist on EmulatorClient) ---------------------

    def entity(self, tenant_id: str, policy_type: str, external_id: str) -> dict[str, Any]:
        """The stored object with `assignments` (and `settings`), secrets in clear, nothing volatile."""
        return scenario.entity(self.state, tenant_id, policy_type, external_id)

    def update_object(self, tenant_id: str, policy_type: str, external_id: str,
                      fields: dict[str, Any]) -> dict[str, Any]:
        """Merge top-level fields (``assignments``/``settings`` replace those lists)."""
        return scenario.update_object(self.state, tenant_id, policy_type, external_id, fields)

    def rename_object(self, tenant_id: str, policy_type: str, external_id: str, name: str) -> dict[str, Any]:
        return scenario.rename_object(self.state, tenant_id, policy_type, external_id, name)

    def set_setting(self, tenant_id: str, policy_type: str, external_id: str, key: str,
                    value: Any) -> dict[str, Any]:
        """Change one setting: a settingDefinitionId (settings catalog), an omaUri, or a property name."""
        return scenario.set_setting(self.state, tenant_id, policy_type, external_id, key, value)

    def assignments(self, tenant_id: str, policy_type: str, external_id: str) -> list[dict[str, Any]]:
        return scenario.assignments(self.state, tenant_id, policy_type, external_id)

    def add_assignment(self, tenant_id: str, policy_type: str, external_id: str, kind: str, *,
                       group_id: str | None = None, filter_id: str | None = None, filter_type: str = "none",
                       intent: str | None = None) -> dict[str, Any]:
        """kind: group | exclude | allDevices | allLicensedUsers; filter_type: include | exclude | none."""
        return scenario.add_assignment(self.state, tenant_id, policy_type, external_id, kind,
                                       group_id=group_id, filter_id=filter_id, filter_type=filter_type,
                                       intent=intent)

    def remove_assignment(self, tenant_id: str, policy_type: str, external_id: str, target: str) -> int:
        """Remove by assignment id, group id, or "allDevices"/"allLicensedUsers"; returns how many."""
        return scenario.remove_assignment(self.state, tenant_id, policy_type, external_id, target)

    def settings(self, tenant_id: str, external_id: str) -> list[dict[str, Any]]:
        return scenario.settings(self.state, tenant_id, external_id)

    def groups(self, tenant_id: str) -> list[dict[str, Any]]:
        return scenario.groups(self.state, tenant_id)

    def add_group(self, tenant_id: str, fields: dict[str, Any] | None = None) -> str:
        return scenario.add_group(self.state, tenant_id, fields)

    def update_group(self, tenant_id: str, group_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        return scenario.update_group(self.state, tenant_id, group_id, fields)

    def remove_group(self, tenant_id: str, group_id: str) -> None:
        scenario.remove_group(self.state, tenant_id, group_id)

    def reencrypt(self) -> None:
        """Rotate the secret-encryption key (every read re-encrypts anyway)."""
        self.state.vault.rotate()

    def set_volatile_lists(self, on: bool) -> None:
        """On: plain listings vary like content reads (volatile fields, array order)."""
        self.state.volatile_lists = on

    def register_certificate(self, cert_pem: bytes | str) -> str:
        """Register an app certificate: from then on client assertions must be signed by one. Returns
        its SHA-256 thumbprint (hex)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes

        cert = x509.load_pem_x509_certificate(cert_pem.encode() if isinstance(cert_pem, str) else cert_pem)
        sha256, sha1 = cert.fingerprint(hashes.SHA256()).hex(), cert.fingerprint(hashes.SHA1()).hex()
        with self.state.lock:
            self.state.certificates[sha256] = cert
            self.state.certificates[sha1] = cert
        return sha256

    # --- faults and log -------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        self.state.faults.add(fault)

    def clear_faults(self) -> None:
        self.state.faults.clear()

    @property
    def faults(self) -> list[dict[str, Any]]:
        """Active faults with their counters (matched / applied)."""
        return self.state.faults.snapshot()

    @property
    def request_log(self) -> list[RequestRecord]:
        with self.state.lock:
            return list(self.state.log)

    def clear_log(self) -> None:
        with self.state.lock:
            self.state.log.clear()

    def describe(self) -> dict[str, Any]:
        return self.state.describe()


def serve(host: str = "127.0.0.1", port: int = 0, state_dir: Path | str = Path(".tenantatlas/emulator"),
          tenants: Iterable[TenantSpec] = DEMO_TENANTS, client_id: str = DEFAULT_CLIENT_ID,
          client_secret: str = DEFAULT_CLIENT_SECRET, latency_ms: float = 0.0, seed: int = 0,
          on_ready: Callable[[Emulator], None] | None = None,
          stop_event: threading.Event | None = None) -> None:
    """Run an emulator until SIGINT/SIGTERM (or `stop_event`), with `state_dir/emulator.json` describing it.

    The state file appears only once the port is listening and is removed on a clean stop, so "the file
    exists" means "an emulator is there". `on_ready` defaults to printing the base URL and state file.
    """
    stop = stop_event or threading.Event()
    emu = Emulator(state_dir=Path(state_dir), tenants=tenants, client_id=client_id,
                   client_secret=client_secret, latency_ms=latency_ms, seed=seed, host=host, port=port)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    emu.start()
    try:
        if on_ready is None:
            print(f"emulator listening on {emu.base_url} (state: {emu.state_file})", file=sys.stdout,
                  flush=True)
        else:
            on_ready(emu)
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
