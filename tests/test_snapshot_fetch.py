"""The fetch strategy's pure parts and the page prefetcher (no Graph needed)."""

from __future__ import annotations

import threading
import time

import pytest

from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.snapshots.fetch import (
    Strategy,
    detail_url,
    expand_for,
    needs_details,
    prefetched,
    strategy_from_env,
)


def test_expand_and_detail_urls() -> None:
    assert expand_for("settingsCatalogPolicy") == "assignments,settings"
    assert expand_for("deviceConfiguration") == "assignments"
    assert expand_for("roleScopeTag") is None
    assert detail_url("deviceConfiguration", "a/b") == (
        "/deviceManagement/deviceConfigurations/a%2Fb?$expand=assignments")


def test_needs_details_only_when_the_listing_is_incomplete() -> None:
    full = {"id": "1", "assignments": [], "settings": []}
    assert not needs_details("settingsCatalogPolicy", full, Strategy.EXPAND)
    assert needs_details("settingsCatalogPolicy", full, Strategy.BATCH)
    assert needs_details("settingsCatalogPolicy", {**full, "settings@odata.nextLink": "x"}, Strategy.EXPAND)
    assert needs_details("deviceConfiguration", {"id": "1"}, Strategy.EXPAND)  # expansion omitted
    assert not needs_details("roleScopeTag", {"id": "0"}, Strategy.BATCH)  # nothing to expand


def test_strategy_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TENANTATLAS_SNAPSHOT_FETCH", raising=False)
    assert strategy_from_env() is Strategy.EXPAND
    monkeypatch.setenv("TENANTATLAS_SNAPSHOT_FETCH", "batch")
    assert strategy_from_env() is Strategy.BATCH
    monkeypatch.setenv("TENANTATLAS_SNAPSHOT_FETCH", "fast")
    with pytest.raises(TenantAtlasError) as err:
        strategy_from_env()
    assert err.value.code == ErrorCode.CONFIG_INVALID


def test_prefetched_keeps_order_and_raises_where_the_page_would_be() -> None:
    def pages():
        yield 1
        yield 2
        raise TenantAtlasError(ErrorCode.GRAPH_THROTTLED, "page 3 could not be read")

    got = []
    with pytest.raises(TenantAtlasError) as err:
        for page in prefetched(pages()):  # type: ignore[arg-type]
            got.append(page)
    assert got == [1, 2] and err.value.code == ErrorCode.GRAPH_THROTTLED


def test_prefetched_reads_ahead_by_at_most_depth_and_stops_when_closed() -> None:
    produced = []
    stopped = threading.Event()

    def pages():
        try:
            for i in range(100):
                produced.append(i)
                yield i
        finally:
            stopped.set()

    it = prefetched(pages(), depth=1)  # type: ignore[arg-type]
    assert next(it) == 0
    time.sleep(0.3)
    assert len(produced) <= 3  # the page handed out, one queued, one waiting to be queued
    it.close()
    assert stopped.wait(5)
    assert len(produced) < 100
