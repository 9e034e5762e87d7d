"""Cross-tenant compare, promotion plan and fleet alignment on the real PostgreSQL, with snapshots set up
exactly through the snapshot store's synthetic helper (the same capture and store code as a run).

Every object, group, filter and scope-tag id differs between the two tenants; the names do not."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from dagster import DagsterInstance, instance_for_test, materialize

from tenantatlas_pipelines.cli import cli
from tenantatlas_pipelines.compare import Action, Match
from tenantatlas_pipelines.compare.plan import promotion_plan
from tenantatlas_pipelines.compare.run import CompareRequest, GoldenConfig, compare_tenants
from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.defs.fleet import FleetGolden, alignment_requests, fleet_alignment
from tenantatlas_pipelines.defs.resources import InventoryDatabase
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.snapshots import GroupType, Reference, RefKind
from tenantatlas_pipelines.snapshots.synthetic import SyntheticObject, group_assignment, insert_snapshot
from tenantatlas_pipelines.store.fleet_alignment import deviations, get_alignment
from tenantatlas_pipelines.store.scope import ANALYST_ROLE, release, tenant_scope
from tenantatlas_pipelines.store.selections import Selection, add_selection
from tenantatlas_pipelines.store.tenants import add_tenant
from tests.support import TENANT_A, TENANT_B

TYPES = ["deviceConfiguration", "appConfigurationPolicy", "mobileApp", "conditionalAccessPolicy"]


class Tenant:
    """Ids of one tenant: the same logical baseline gets its own ids per tenant (as in Intune)."""

    def __init__(self, tenant_id: str, key: str, n: int) -> None:
        self.tenant_id, self.key, self.n = tenant_id, key, n

    def id(self, what: str) -> str:  # a GUID unique per (tenant, what)
        h = abs(hash((self.key, what))) % (16**12)
        return f"{self.n:08x}-{len(what):04x}-4{self.n:03x}-8{len(self.key):03x}-{h:012x}"

    def tag(self, what: str) -> str:  # scope tags have numeric ids
        return str(self.n * 100 + len(what))


GOLD = Tenant(TENANT_A, "gold", 1)
BRANCH = Tenant(TENANT_B, "branch", 2)
THIRD = Tenant("33333333-3333-4333-8333-333333333333", "third", 3)


def references(t: Tenant, groups: tuple[str, ...] = ("Sales", "Break glass")) -> list[Reference]:
    refs = [Reference(RefKind.GROUP, t.id(f"group {g}"), g, GroupType.SECURITY) for g in groups]
    refs.append(Reference(RefKind.ASSIGNMENT_FILTER, t.id("filter Win11"), "Win11"))
    refs.append(Reference(RefKind.SCOPE_TAG, t.tag("Paris"), "Paris"))
    refs.append(Reference(RefKind.SCOPE_TAG, "0", "Default"))
    return refs


def baseline(t: Tenant, *, ssid: str = "corp", filter_mode: str = "include") -> list[SyntheticObject]:
    """One baseline as deployed to tenant `t`: only ids (and the tenant's own id / domain) differ."""
    return [
        SyntheticObject("deviceConfiguration", t.id("wifi"), {
            "@odata.type": "#microsoft.graph.windowsWifiConfiguration", "displayName": "Corp Wi-Fi",
            "ssid": ssid, "roleScopeTagIds": [t.tag("Paris"), "0"],
            "omaSettings": [{"omaUri": "./Vendor/MSFT/X", "value": 1}],
        }, assignments=[group_assignment(t.id("group Sales"), filter_id=t.id("filter Win11"),
                                         filter_mode=filter_mode)]),
        SyntheticObject("mobileApp", t.id("app outlook"), {
            "@odata.type": "#microsoft.graph.iosStoreApp", "displayName": "Outlook", "publisher": "Microsoft",
        }),
        SyntheticObject("appConfigurationPolicy", t.id("appconfig"), {
            "@odata.type": "#microsoft.graph.iosMobileAppConfiguration", "displayName": "Outlook config",
            "targetedMobileApps": [t.id("app outlook")],
            "settings": [{"appConfigKey": "AllowedTenantIds", "appConfigKeyValue": t.tenant_id},
                         {"appConfigKey": "Domain", "appConfigKeyValue": f"{t.key}.onmicrosoft.com"}],
        }),
        SyntheticObject("conditionalAccessPolicy", t.id("ca"), {
            "displayName": "Require MFA", "state": "enabled",
            "conditions": {"users": {"includeUsers": ["All"], "excludeGroups": [t.id("group Break glass")]}},
        }),
    ]


@pytest.fixture
def selection(conn: psycopg.Connection) -> Selection:
    for t in (GOLD, BRANCH, THIRD):
        add_tenant(conn, t.tenant_id, t.key, t.key.title())
    return add_selection(conn, "cmp", TYPES)


Snap = Callable[..., int]


@pytest.fixture
def snap(conn: psycopg.Connection, selection: Selection) -> Snap:
    def take(t: Tenant, objects: list[SyntheticObject], refs: list[Reference] | None = None,
             **kw: Any) -> int:
        return insert_snapshot(tenant_scope(conn, t.tenant_id), selection, objects,
                               references=references(t) if refs is None else refs, **kw)
    return take


def by_name(result) -> dict[str, Any]:
    return {i.display_name: i for i in result.items}


def test_one_baseline_with_different_ids_compares_identical(conn, snap: Snap) -> None:
    snap(GOLD, baseline(GOLD))
    snap(BRANCH, baseline(BRANCH))
    result = compare_tenants(conn, CompareRequest("gold", "branch", "cmp"))
    assert [(i.display_name, i.match, i.changes) for i in result.items
            if i.match is not Match.IDENTICAL] == []
    assert len(result.items) == 4
    item = by_name(result)["Corp Wi-Fi"]
    assert (item.source_external_id, item.target_external_id) == (GOLD.id("wifi"), BRANCH.id("wifi"))


def test_the_canonicaliser_is_needed(conn, snap: Snap) -> None:
    """Control: the same two snapshots as stored (ids, no names) differ on every tenant-specific value."""
    from tenantatlas_pipelines.snapshots import diff
    from tenantatlas_pipelines.store.snapshot_objects import objects_of_snapshot

    raw = [{o.display_name: o.content for o in objects_of_snapshot(tenant_scope(conn, t.tenant_id),
                                                                   snap(t, baseline(t)), names=False)}
           for t in (GOLD, BRANCH)]
    paths = {c.path for n in raw[0] for c in diff(raw[0][n], raw[1][n])}
    assert {"roleScopeTagIds", "conditions.users.excludeGroups", "targetedMobileApps"} <= paths
    assert any(p.startswith("assignments[") for p in paths)
    assert any(p.startswith("settings[") for p in paths)  # AllowedTenantIds / the domain


def test_each_mismatch_kind_with_its_path(conn, snap: Snap) -> None:
    gold = [*baseline(GOLD),
            SyntheticObject("deviceConfiguration", GOLD.id("vpn"), {"displayName": "Legacy VPN"})]
    branch = baseline(BRANCH, ssid="corp-guest", filter_mode="exclude")
    branch.append(SyntheticObject("deviceConfiguration", BRANCH.id("kiosk"), {"displayName": "Kiosk"}))
    branch[2] = SyntheticObject("appConfigurationPolicy", BRANCH.id("appconfig"), {
        **branch[2].content,
        "settings": [{"appConfigKey": "AllowedTenantIds", "appConfigKeyValue": GOLD.tenant_id}],
    })
    snap(GOLD, gold)
    snap(BRANCH, branch)
    result = compare_tenants(conn, CompareRequest("gold", "branch", "cmp"))
    items = by_name(result)
    wifi = items["Corp Wi-Fi"]
    assert wifi.match is Match.DIFFERENT
    assert {c.path: (c.old, c.new) for c in wifi.changes} == {
        "ssid": ("corp", "corp-guest"),
        "assignments[group:Sales].filter_mode": ("include", "exclude"),
    }
    # the branch names the golden tenant's id where its own belongs, and lost the Domain entry
    config = items["Outlook config"]
    assert config.match is Match.DIFFERENT
    assert any(c.path.startswith("settings[") for c in config.changes)
    assert items["Legacy VPN"].match is Match.ONLY_IN_SOURCE
    assert items["Legacy VPN"].target_external_ids == ()
    assert items["Kiosk"].match is Match.ONLY_IN_TARGET
    assert items["Kiosk"].source_external_ids == ()
    assert items["Require MFA"].match is Match.IDENTICAL
    assert result.counts() == {"identical": 2, "different": 2, "only_in_source": 1, "only_in_target": 1,
                               "ambiguous": 0}


def test_a_renamed_group_is_a_difference_by_name(conn, snap: Snap) -> None:
    snap(GOLD, baseline(GOLD))
    renamed = [Reference(r.kind, r.ref_id, "Sales EU", r.group_type) if r.name == "Sales" else r
               for r in references(BRANCH)]
    snap(BRANCH, baseline(BRANCH), renamed)
    wifi = by_name(compare_tenants(conn, CompareRequest("gold", "branch", "cmp")))["Corp Wi-Fi"]
    assert {c.path for c in wifi.changes} == {"assignments[group:Sales]", "assignments[group:Sales EU]"}


def test_a_duplicate_name_is_ambiguous_and_never_guessed(conn, snap: Snap) -> None:
    snap(GOLD, baseline(GOLD))
    branch = baseline(BRANCH, ssid="other")
    branch.append(SyntheticObject("deviceConfiguration", BRANCH.id("wifi copy"), {
        **branch[0].content, "displayName": "  corp WI-FI ", "ssid": "corp"}))
    snap(BRANCH, branch)
    result = compare_tenants(conn, CompareRequest("gold", "branch", "cmp"))
    item = by_name(result)["Corp Wi-Fi"]
    assert item.match is Match.AMBIGUOUS
    assert item.changes == ()
    assert item.target_external_ids == tuple(sorted([BRANCH.id("wifi"), BRANCH.id("wifi copy")]))
    assert item.source_external_id == GOLD.id("wifi") and item.target_external_id is None
    # neither the identical copy nor the different one was picked, and nothing is planned for it
    assert all(i.display_name != "Corp Wi-Fi" for i in result.items if i is not item)
    assert all(s.display_name != "Corp Wi-Fi" for s in promotion_plan(result))
    # the other direction: ambiguous on the source side
    reverse = compare_tenants(conn, CompareRequest("branch", "gold", "cmp"))
    assert by_name(reverse)["Corp Wi-Fi"].match is Match.AMBIGUOUS


def test_plan_creates_updates_and_blocks_on_a_group_the_target_lacks(conn, snap: Snap) -> None:
    gold = [
        *baseline(GOLD),
        SyntheticObject("deviceConfiguration", GOLD.id("fin"), {"displayName": "Finance laptops"},
                        assignments=[group_assignment(GOLD.id("group Finance"))]),
        SyntheticObject("deviceConfiguration", GOLD.id("sales2"), {"displayName": "Sales tablets"},
                        assignments=[group_assignment(GOLD.id("group Sales"))]),
        SyntheticObject("deviceConfiguration", GOLD.id("dangling"), {"displayName": "Old pilot"},
                        assignments=[group_assignment(GOLD.id("group removed"))]),
    ]
    snap(GOLD, gold, references(GOLD, ("Sales", "Break glass", "Finance")))  # "removed" stays unresolved
    snap(BRANCH, baseline(BRANCH, ssid="corp-guest"))
    result = compare_tenants(conn, CompareRequest("gold", "branch", "cmp"))
    plan = {s.display_name: s for s in promotion_plan(result)}
    assert set(plan) == {"Corp Wi-Fi", "Finance laptops", "Sales tablets", "Old pilot"}
    assert plan["Corp Wi-Fi"].action is Action.UPDATE
    assert [c.path for c in plan["Corp Wi-Fi"].changes] == ["ssid"]
    assert plan["Sales tablets"].action is Action.CREATE and plan["Sales tablets"].blocked_by == ()
    finance = plan["Finance laptops"]
    assert finance.action is Action.BLOCKED and finance.intended is Action.CREATE
    assert [b.as_dict() for b in finance.blocked_by] == [
        {"kind": "group", "name": "Finance", "source_id": GOLD.id("group Finance")}]
    old = plan["Old pilot"]
    assert old.action is Action.BLOCKED and [(b.kind, b.name) for b in old.blocked_by] == [("group", None)]


def test_plan_blocks_on_a_referenced_app_the_target_lacks(conn, snap: Snap) -> None:
    snap(GOLD, [*baseline(GOLD), SyntheticObject("appConfigurationPolicy", GOLD.id("teams cfg"), {
        "displayName": "Teams config", "targetedMobileApps": [GOLD.id("app teams")]}),
        SyntheticObject("mobileApp", GOLD.id("app teams"), {"displayName": "Teams"})])
    snap(BRANCH, baseline(BRANCH))
    result = compare_tenants(conn, CompareRequest("gold", "branch", "cmp"))
    plan = {s.display_name: s for s in promotion_plan(result)}
    assert plan["Teams"].action is Action.CREATE
    assert [(b.kind, b.name) for b in plan["Teams config"].blocked_by] == [("mobileApp", "Teams")]


def test_snapshot_choice_and_errors(conn, snap: Snap) -> None:
    first = snap(GOLD, baseline(GOLD, ssid="old"))
    snap(GOLD, baseline(GOLD))
    snap(BRANCH, baseline(BRANCH), status="partial", failed_types={"mobileApp": "graph_forbidden"})
    with pytest.raises(TenantAtlasError) as err:
        compare_tenants(conn, CompareRequest("gold", "branch", "cmp"))
    assert err.value.code == ErrorCode.SNAPSHOT_NOT_FOUND and "branch" in err.value.message
    partial = snap(BRANCH, baseline(BRANCH), status="partial", failed_types={"mobileApp": "graph_forbidden"})
    # explicit ids: an older snapshot of the source, a partial one of the target (the caller's choice)
    result = compare_tenants(conn, CompareRequest("gold", "branch", "cmp", first, partial))
    assert result.source.snapshot_id == first and result.target.status == "partial"
    assert [c.path for c in by_name(result)["Corp Wi-Fi"].changes] == ["ssid"]
    with pytest.raises(TenantAtlasError) as err:  # another tenant's snapshot id
        compare_tenants(conn, CompareRequest("gold", "branch", "cmp", partial))
    assert err.value.code == ErrorCode.SNAPSHOT_NOT_FOUND


def test_cli_json_contract_and_exit_codes(db: Database, snap: Snap) -> None:
    snap(GOLD, [*baseline(GOLD),
                SyntheticObject("deviceConfiguration", GOLD.id("vpn"), {"displayName": "VPN"})])
    sid = snap(BRANCH, baseline(BRANCH, ssid="x"))
    runner = CliRunner()
    out = runner.invoke(cli, ["compare", "--source", "gold", "--target", "branch", "--selection", "cmp",
                              "--target-snapshot", str(sid), "--plan", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["source"]["tenant_key"] == "gold" and doc["target"]["snapshot_id"] == sid
    assert isinstance(doc["source"]["snapshot_id"], int)
    wifi = next(i for i in doc["items"] if i["display_name"] == "Corp Wi-Fi")
    assert {k: wifi[k] for k in ("policy_type", "match", "source_external_id", "target_external_id")} == {
        "policy_type": "deviceConfiguration", "match": "different", "source_external_id": GOLD.id("wifi"),
        "target_external_id": BRANCH.id("wifi")}
    assert wifi["changes"] == [{"path": "ssid", "source": "corp", "target": "x"}]
    assert {(p["action"], p["display_name"]) for p in doc["plan"]} == {
        ("update", "Corp Wi-Fi"), ("create", "VPN")}
    fields = {"action", "policy_type", "display_name", "changes", "blocked_by"}
    assert all(set(p) >= fields for p in doc["plan"])
    text = runner.invoke(cli, ["compare", "--source", "gold", "--target", "branch", "--selection", "cmp",
                               "--plan"])
    assert text.exit_code == 0 and "Corp Wi-Fi" in text.output and "update" in text.output
    missing = runner.invoke(cli, ["compare", "--source", "gold", "--target", "third", "--selection", "cmp"])
    assert missing.exit_code == 2 and "snapshot_not_found" in missing.output and "third" in missing.output


# --- fleet alignment -----------------------------------------------------------------------------------
def _eight(t: Tenant) -> list[SyntheticObject]:
    return [SyntheticObject("deviceConfiguration", t.id(f"p{i}"), {"displayName": f"Policy {i}", "v": 1},
                            assignments=[group_assignment(t.id("group Sales"))]) for i in range(8)]


@pytest.fixture
def instance() -> DagsterInstance:
    with instance_for_test() as inst:
        inst.add_dynamic_partitions("tenant", ["gold", "branch", "third"])
        yield inst


def _materialize(instance: DagsterInstance, db: Database, tenant: str, golden: str | None = "gold"):
    return materialize(
        [fleet_alignment], partition_key=tenant, instance=instance, raise_on_error=False,
        resources={"inventory_db": InventoryDatabase(database_url=db.url),
                   "fleet_golden": FleetGolden(golden_tenant=golden, selection="cmp")},
    )


def test_fleet_alignment_scores_a_tenant_built_to_be_75_percent_aligned(
    db: Database, conn, snap: Snap, instance: DagsterInstance
) -> None:
    snap(GOLD, _eight(GOLD))
    branch = _eight(BRANCH)
    branch[3] = SyntheticObject("deviceConfiguration", BRANCH.id("p3"), {"displayName": "Policy 3", "v": 2},
                                assignments=[group_assignment(BRANCH.id("group Sales"))])
    del branch[7]  # only in the golden tenant
    branch.append(SyntheticObject("deviceConfiguration", BRANCH.id("extra"), {"displayName": "Local extra"}))
    snap(BRANCH, branch)
    for _ in range(2):  # a second run replaces the tenant's rows, it does not add to them
        result = _materialize(instance, db, "branch")
        assert result.success
    meta = result.asset_materializations_for_node("fleet_alignment")[0].metadata
    assert meta["alignment_score"].value == 0.75
    assert (meta["identical"].value, meta["different"].value, meta["only_in_golden"].value,
            meta["only_in_tenant"].value) == (6, 1, 1, 1)
    assert "Policy 3" in meta["deviations"].value
    row = get_alignment(tenant_scope(conn, BRANCH.tenant_id))
    assert row is not None and row.score == 0.75 and row.golden_objects == 8
    assert row.golden_tenant_id == GOLD.tenant_id and row.dagster_run_id == result.run_id
    assert deviations(tenant_scope(conn, BRANCH.tenant_id)) == [
        ("deviceConfiguration", "Local extra", "only_in_target", 0),
        ("deviceConfiguration", "Policy 3", "different", 1),
        ("deviceConfiguration", "Policy 7", "only_in_source", 0),
    ]
    # analysts read every tenant's score through the view
    release(conn)
    conn.execute(f"SET ROLE {ANALYST_ROLE}")
    rows = conn.execute("SELECT tenant_key, golden_tenant_key, score, only_in_golden"
                        " FROM analyst_fleet_alignment").fetchall()
    devs = conn.execute("SELECT deviation FROM analyst_fleet_deviations ORDER BY deviation").fetchall()
    conn.execute("RESET ROLE")
    assert rows == [("branch", "gold", 0.75, 1)]
    assert [d[0] for d in devs] == ["different", "only_in_golden", "only_in_tenant"]


def test_fleet_alignment_fails_clearly_without_golden_or_snapshot(db: Database, snap: Snap, instance) -> None:
    snap(GOLD, _eight(GOLD))
    no_golden = _materialize(instance, db, "branch", golden=None)
    assert not no_golden.success
    no_snapshot = _materialize(instance, db, "third")
    assert not no_snapshot.success
    failures = [e.event_specific_data.error.message for r in (no_golden, no_snapshot)
                for e in r.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "config_invalid" in failures[0] and "snapshot_not_found" in failures[1]


def test_sensor_requests_the_tenant_or_the_whole_fleet() -> None:
    golden = GoldenConfig("gold", "cmp")
    fleet = ["third", "branch", "gold"]
    assert alignment_requests("branch", "cmp", golden, fleet) == ["branch"]
    assert alignment_requests("gold", "cmp", golden, fleet) == ["branch", "gold", "third"]
    assert alignment_requests("branch", "all", golden, fleet) == []
    assert alignment_requests("branch", "cmp", None, fleet) == []
