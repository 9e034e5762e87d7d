"""Graph paging tokens and nextLinks: opaque ``$skiptoken`` values (optionally double-encoded), ``$skip``.

A client must follow nextLinks verbatim; these helpers make sure it has to (tokens contain ``=``, options
are repeated, some types double-encode).
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

from .core import EmulatorState, Request, Response
from .envelope import graph_error

_TOKEN_MAGIC = b"RDSp"


def encode_skiptoken(slot: int, empty: bool = False) -> str:
    # Looks like Graph's opaque tokens and contains '=' (and often '+' or '/'): clients must not rebuild it.
    return base64.b64encode(_TOKEN_MAGIC + struct.pack(">IBB", slot, int(empty), 0x7E)).decode("ascii")


def decode_skiptoken(token: str) -> tuple[int, bool] | None:
    for _ in range(3):  # tolerate double (and triple) encoding, as Graph itself does
        if "%" not in token:
            break
        token = unquote(token)
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 10 or not raw.startswith(_TOKEN_MAGIC):
        return None
    slot, empty, _ = struct.unpack(">IBB", raw[4:])
    return slot, bool(empty)


def options(query: str) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """Raw pairs and a dict keyed by option name without `$`, lower-cased (beta accepts `top=`)."""
    pairs = parse_qsl(query, keep_blank_values=True)
    return pairs, {k.lstrip("$").lower(): v for k, v in pairs}


def next_link(state: EmulatorState, request: Request, pairs: list[tuple[str, str]], style: str,
               slot: int, empty: bool = False) -> str:
    kept = [(k, v) for k, v in pairs if k.lstrip("$").lower() not in ("skip", "skiptoken")]
    parts = [f"{quote(k, safe='$')}={quote(v, safe='$,()')}" for k, v in kept]
    if style == "skip" and not empty:
        parts.append(f"$skip={slot}")
    else:
        token = quote(encode_skiptoken(slot, empty), safe="")
        parts.append(f"$skiptoken={quote(token, safe='') if style == 'skiptoken2' else token}")
    return f"{state.base_url}{request.path}?{'&'.join(parts)}"


def window(request: Request, opts: dict[str, str], page_size: int,
           log: dict[str, Any]) -> tuple[int, int] | Response:
    """(start, size) of a ``$skiptoken``-paged answer whose ``$top`` may only shrink the page, or the
    400 for a bad token or ``$top``."""
    start = 0
    if "skiptoken" in opts:
        decoded = decode_skiptoken(opts["skiptoken"])
        if decoded is None:
            return graph_error(request, 400, "Invalid $skiptoken value.", **log)
        start = decoded[0]
    size = page_size
    if "top" in opts:
        if not opts["top"].isdigit() or int(opts["top"]) < 1:
            return graph_error(request, 400, f"Invalid $top value '{opts['top'][:40]}'.", **log)
        size = min(size, int(opts["top"]))
    return start, size
