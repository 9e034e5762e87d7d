"""The Dagster layer's plain decisions, without an instance or a database: partitions, planning,
invariants, reporting, and a load of the whole Definitions so broken wiring fails fast."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from dagster import AssetKey, MultiPartitionKey

from tenantatlas_pipelines.defs import invariants, planning, reporting
from tenantatlas_pipelines.defs.partitions import (
    SEEDED_SELECTIONS,
    PartitionRef,
    build_sync_partitions,
    clean_selection_names,
    load_selection_names,
    partition_ref,
)


# --- partitions --------------------------------------------------------------------------------------
def test_partition_key_round_trip() -> None:
    ref = PartitionRef("contoso", "apps")
    assert str(ref.key) == "apps|contoso"  # dimensions sorted by name: selection|tenant
    assert partition_ref(ref.key) == ref
    assert partition_ref("apps|contoso") == ref
    assert partition_ref(MultiPartitionKey({"tenant": "fabrikam", "selection": "all"})) == PartitionRef(
        "fabrikam", "all"
    )


@pytest.mark.parametrize("bad", ["contoso", "|contoso", "apps|", ""])
def test_partition_ref_rejects_malformed_keys(bad: str) -> None:
    with pytest.raises(ValueError):
        partition_ref(bad)


def test_selection_names_fall_back_to_seeded_when_store_unreachable() -> None:
    assert load_selection_names(lambda: None) == SEEDED_SELECTIONS
    assert load_selection_names(lambda: []) == SEEDED_SELECTIONS
    assert load_selection_names(lambda: ["apps", "all", "apps", "Bad|Name", "custom-1"]) == (
        "all",
        "apps",
        "custom-1",
    )
    assert clean_selection_names(["|"]) == SEEDED_SELECTIONS


def test_sync_partitions_cross_tenants_and_selections() -> None:
    partitions = build_sync_partitions(["all", "apps"])
    dims = {d.name: d.partitions_def for d in partitions.partitions_defs}
    assert set(dims) == {"tenant", "selection"}
    assert dims["selection"].get_partition_keys() == ["all", "apps"]
    assert getattr(dims["tenant"], "name", None) == "tenant"


# --- planning (sensor and schedule decisions) --------------------------------------------------------
T = planning.RegistryTenant


def test_mirror_adds_enabled_and_removes_disabled_or_unregistered() -> None:
    diff = planning.mirror_tenants([T("a", True), T("b", False), T("c", True)], ["b", "c", "gone"])
    assert diff.add == ("a",)
    assert diff.remove == ("b", "gone")
    assert planning.mirror_tenants([T("a", True)], ["a"]).empty


def test_scheduled_partitions_only_enabled_partition_tenants() -> None:
    refs = planning.scheduled_partitions(
        ["b", "a", "disabled-since"], ["all", "apps"], enabled_tenants=["a", "b", "x"]
    )
    assert refs == [
        PartitionRef("a", "all"),
        PartitionRef("a", "apps"),
        PartitionRef("b", "all"),
        PartitionRef("b", "apps"),
    ]
    assert len(planning.scheduled_partitions(["a"], ["all"], enabled_tenants=None)) == 1


def test_run_keys_unique_per_tick_and_partition_and_stable() -> None:
    t1, t2 = datetime(2026, 1, 1, 3, tzinfo=UTC), datetime(2026, 1, 2, 3, tzinfo=UTC)
    refs = planning.scheduled_partitions(["a", "b"], ["all", "apps"])
    keys1 = [planning.schedule_run_key(t1, r) for r in refs]
    assert len(set(keys1)) == len(refs)
    assert keys1 == [planning.schedule_run_key(t1, r) for r in refs]  # a re-evaluated tick dedupes
    assert not set(keys1) & {planning.schedule_run_key(t2, r) for r in refs}  # next tick runs again


# --- invariants --------------------------------------------------------------------------------------
def test_duplicate_identities_case_insensitive() -> None:
    assert invariants.duplicate_identities(
        [("mobileApp", "A1"), ("mobileApp", "a1"), ("roleScopeTag", "a1")]
    ) == [("mobileApp", "a1")]
    assert invariants.duplicate_identities([("mobileApp", "a1"), ("mobileApp", "a2")]) == []


def test_meta_keys_outside_whitelist() -> None:
    assert (
        invariants.meta_keys_outside_whitelist([("mobileApp", {"publisher": "x", "created_at": "t"})]) == {}
    )
    assert invariants.meta_keys_outside_whitelist(
        [("roleScopeTag", {"created_at": "t", "is_built_in": True}), ("mobileApp", {"secret": "s"})]
    ) == {"mobileApp": ["secret"], "roleScopeTag": ["created_at"]}


def test_deleted_markers() -> None:
    assert invariants.deleted_markers(["confidence", "reason"], ["high", "low", "not_observed", None]) == []
    assert invariants.deleted_markers(["is_deleted"], ["deleted"]) == [
        "column 'is_deleted'",
        "value 'deleted'",
    ]


# --- reporting ---------------------------------------------------------------------------------------
def _result(**overrides: object) -> SimpleNamespace:
    base = dict(
        sync_run_id=7,
        status="succeeded",
        tenant_key="contoso",
        tenant_id="t",
        selection_name="apps",
        selection_hash="h",
        observed=3,
        new=1,
        changed=1,
        errors=0,
        filtered=2,
        meta_keys_dropped=5,
        requests=4,
        throttled=1,
        retries=1,
        duration_s=1.5,
        had_errors=False,
        error_codes=(),
        error_message=None,
    )
    return SimpleNamespace(**{**base, **overrides})


def test_sync_metadata_is_numeric_with_run_id_and_status() -> None:
    meta = reporting.sync_metadata(_result())  # type: ignore[arg-type]
    for name in ("observed", "new", "changed", "errors", "meta_keys_dropped", "requests", "throttled"):
        assert isinstance(meta[name], int)
    assert meta["duration_s"] == 1.5 and meta["sync_run_id"] == 7 and meta["status"] == "succeeded"
    summary = reporting.ledger_summary(_result(status="skipped", error_codes=("lock_held",)))  # type: ignore[arg-type]
    assert summary["status"] == "skipped" and summary["error_codes"] == ["lock_held"]
    assert summary["counts"]["observed"] == 3


def test_skipped_message_says_so_plainly() -> None:
    msg = reporting.skipped_message(_result(status="skipped", error_codes=("lock_held",)))  # type: ignore[arg-type]
    assert msg.startswith("SKIPPED") and "lock_held" in msg and "contoso" in msg


def test_preview_markdown_escapes_and_truncates() -> None:
    import pandas as pd

    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        dict(
            policy_type="mobileApp",
            external_id=f"id{i}",
            display_name="a|b",
            last_seen_at=now,
            confidence="high",
            reason="not_observed",
        )
        for i in range(25)
    ]
    md = reporting.preview_markdown(pd.DataFrame(rows), limit=20)
    assert md.count("\n| mobileApp") == 20 and "a\\|b" in md and "5 more" in md
    assert (
        reporting.preview_markdown(pd.DataFrame(columns=list(reporting.MISSING_COLUMNS)))
        == "No missing items."
    )


# --- the whole Definitions ---------------------------------------------------------------------------
def test_definitions_load_and_wire_everything() -> None:
    from tenantatlas_pipelines.definitions import defs
    from tenantatlas_pipelines.defs.jobs import SYNC_JOB_NAME

    job = defs.resolve_job_def(SYNC_JOB_NAME)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} >= {
        "inventory_sync",
        "missing_items",
    }
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        # No BackfillPolicy: each partition is its own run and carries dagster/partition/tenant.
        assert graph.get(key).backfill_policy is None
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == {
        "inventory_identities_unique",
        "inventory_meta_within_whitelist",
        "missing_items_unique",
        "missing_items_never_deleted",
        "no_unaccepted_high_confidence_drift",
        "dependency_edges_no_dangling",
    }
    assert defs.resolve_sensor_def("policy_drift_after_snapshot")
    assert graph.get(AssetKey("policy_drift")).automation_condition is not None
    assert AssetKey("policy_snapshots") in graph.get(AssetKey("policy_drift")).parent_keys
    assert defs.resolve_schedule_def("inventory_sync_schedule")
    assert defs.resolve_sensor_def("tenant_registry_sensor")
    assert defs.resolve_sensor_def("missing_items_after_sync")
    assert defs.resolve_sensor_def("dependency_edges_after_snapshot")
    assert job.executor_def.name == "in_process"


def test_definitions_module_imports_stay_light() -> None:
    code = (
        "import sys, tenantatlas_pipelines.definitions; "
        "heavy = ('pandas', 'tenantatlas_pipelines.emulator', 'msal', 'httpx'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "TENANTATLAS_DAGSTER_READ_SELECTIONS": "0"},
    )
    assert out.stdout.strip() == "[]"
