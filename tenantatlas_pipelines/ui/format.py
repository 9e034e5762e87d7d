"""How times, ages, durations and counts read on the pages (pure functions, Jinja filters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def timestamp(value: datetime | None) -> str:
    """UTC to the minute: what a technician compares across tenants; seconds live in the title."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def timestamp_full(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(delta: timedelta | None) -> str:
    """A short age: 45 s, 12 min, 3 h, 2 d (never negative: clocks of two hosts may disagree)."""
    if delta is None:
        return "never"
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def duration(seconds: float | None) -> str:
    """A run's duration: 0.21 s, 14 s, 3 min 5 s; a running run has none yet."""
    if seconds is None:
        return "running"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"


def count(value: int | None) -> str:
    """Thousands separated with a thin space (12 345), so columns of counts scan."""
    if value is None:
        return "—"
    return f"{value:,}".replace(",", "\u2009")


def ago(value: datetime | None, now: datetime) -> str:
    return age(None if value is None else now - value)


# What fits in a portfolio cell; the full code is in the cell's tooltip and on the run page.
_SHORT_CODES = {
    "graph_unauthorized": "401",
    "graph_forbidden": "403",
    "graph_not_found": "404",
    "graph_bad_request": "400",
    "graph_tenant_not_licensed": "no lic.",
    "graph_throttled": "429",
    "graph_server_error": "5xx",
    "graph_invalid_response": "bad page",
    "auth_app_not_consented": "no consent",
    "auth_invalid_client": "bad secret",
    "run_abandoned": "abandoned",
}


def short_code(code: str | None) -> str:
    """A failing cell's label: `403` for graph_forbidden, `no licence`, ...; `failed` without a code."""
    if not code:
        return "failed"
    return _SHORT_CODES.get(code) or code.split("_", 1)[-1].replace("_", " ")
