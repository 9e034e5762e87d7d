"""The zygote's wire format: one JSON object per line over a unix socket, each way."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping
from typing import Any


def send(sock: socket.socket, payload: Mapping[str, Any]) -> None:
    sock.sendall(json.dumps(payload).encode() + b"\n")


def receive(sock: socket.socket) -> dict[str, Any]:
    """The next line as an object ({} when the peer closed without a line)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return json.loads(data or b"{}")
