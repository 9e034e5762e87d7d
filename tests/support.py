"""Test helpers: an in-memory page source that stands where Graph stands, for store-level tests.

The store and the engine are exercised for real against PostgreSQL; only the network edge is replaced,
and only in tests that are about the store (Graph itself is tested against the emulator).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tenantatlas_pipelines.config import PROJECT_ROOT
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m tenantatlas_pipelines ARGS` as a real process from the project root, with the test
    session's environment plus `env`; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "tenantatlas_pipelines", *args],
        cwd=PROJECT_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@dataclass
class MemoryPage:
    items: list[Any]
    url: str = "memory://page"


@dataclass
class MemoryGraph:
    """pages[policy_type] = list of pages (lists of raw items); failures[policy_type] = ErrorCode."""

    pages: dict[str, list[list[Any]]] = field(default_factory=dict)
    failures: dict[str, ErrorCode] = field(default_factory=dict)
    auth_failure: ErrorCode | None = None
    per_tenant_concurrency: int = 4

    def acquire_token(self, tenant_id: str) -> None:
        if self.auth_failure:
            raise TenantAtlasError(self.auth_failure, "token request refused")

    def iter_pages(self, tenant_id: str, policy_type: str, stats: Any = None) -> Iterator[MemoryPage]:
        for page in self.pages.get(policy_type, []):
            if stats is not None:
                stats.requests += 1
            yield MemoryPage(list(page))
        if policy_type in self.failures:
            raise TenantAtlasError(self.failures[policy_type], f"{policy_type} could not be read")


def item(external_id: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": external_id, "displayName": name or f"Policy {external_id}", **extra}


def pages_of(items: Sequence[Mapping[str, Any]], size: int = 2) -> list[list[Any]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)] or [[]]


TENANT_A = "11111111-1111-4111-8111-111111111111"
TENANT_B = "22222222-2222-4222-8222-222222222222"
