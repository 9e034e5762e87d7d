"""TLS material for the emulator: a throw-away CA and a server certificate for 127.0.0.1 and localhost.

The production client verifies TLS for real, so the emulator must present a certificate chained to a CA
the client is told about (``ca_path``) — never a disabled check. Files are written to the state directory
so another process (the CLI, a browser, curl) can trust the same CA.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsFiles:
    ca_path: Path  # PEM of the CA: what clients pass as their trust anchor
    cert_path: Path  # server certificate chain, PEM
    key_path: Path  # server private key, PEM


def make_tls_files(state_dir: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> TlsFiles:
    """Create a CA and a leaf for `hosts` under `state_dir` (private key readable by the owner only)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="TenantAtlas emulator CA")
    leaf = ca.issue_cert(*hosts, common_name=hosts[0])
    files = TlsFiles(
        state_dir / "emulator-ca.pem", state_dir / "emulator-cert.pem", state_dir / "emulator-key.pem"
    )
    ca.cert_pem.write_to_path(str(files.ca_path))
    with open(files.cert_path, "wb") as fh:
        for blob in leaf.cert_chain_pems:
            fh.write(blob.bytes())
    files.key_path.touch(mode=0o600)
    leaf.private_key_pem.write_to_path(str(files.key_path))
    return files


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS server context for the leaf (HTTP/1.1 only; TLS 1.2+)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(files.cert_path), str(files.key_path))
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
