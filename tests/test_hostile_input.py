"""Hostile input: every bad tenant, selection or payload gets a stable code or is counted and skipped,
and nothing already stored is lost.

Payload tests run end to end (emulator -> real TLS -> MSAL + GraphClient -> run_sync -> PostgreSQL): a
clean sync first, then the hostile one, then the two inventories are compared. Tenant and selection
input goes through the real command line (`python -m tenantatlas_pipelines`) against the test database.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from tenantatlas_pipelines.db import Database
from tenantatlas_pipelines.emulator import SECRET_PREFIX, Emulator, Fault, TenantSpec
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.graph.client import GraphClient
from tenantatlas_pipelines.graph.errors import GraphError
from tenantatlas_pipelines.normalize import MAX_NAME_CHARS
from tenantatlas_pipelines.store.missing import missing_items
from tenantatlas_pipelines.store.scope import tenant_scope
from tenantatlas_pipelines.store.selections import add_selection
from tenantatlas_pipelines.sync import SyncResult, run_sync
from tests.fault_helpers import (
    RewritingTransport,
    Row,
    child_result,
    expected_ids,
    graph_env,
    graph_settings,
    inventory,
    register,
    run_types,
    runs,
    spawn_sync,
)
from tests.support import TENANT_A, MemoryGraph, item, run_cli

TYPES = ["conditionalAccessPolicy", "deviceConfiguration", "roleScopeTag", "settingsCatalogPolicy"]
DC = "deviceConfiguration"


@pytest.fixture
def contoso(emulator: Emulator, conn: psycopg.Connection) -> TenantSpec:
    spec = emulator.tenant("contoso")
    register(conn, spec)
    add_selection(conn, "hostile", TYPES)
    return spec


def sync(db: Database, emu: Emulator, transport: httpx.BaseTransport | None = None) -> SyncResult:
    with GraphClient(graph_settings(emu), transport=transport) as graph:
        return run_sync(db, graph, "contoso", "hostile")


@pytest.fixture
def clean(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> dict[tuple[str, str], Row]:
    """A clean sync of the tenant; returns the inventory it left (the baseline nothing may take away)."""
    result = sync(db, emulator)
    assert (result.status, result.had_errors) == ("succeeded", False)
    stored = inventory(conn, contoso.tenant_id)
    assert set(stored) == expected_ids(emulator, contoso.tenant_id, TYPES)
    return stored


def assert_nothing_lost(before: dict[tuple[str, str], Row], after: dict[tuple[str, str], Row]) -> None:
    lost = set(before) - set(after)
    assert not lost, f"stored items disappeared: {sorted(lost)[:5]}"
    for key, row in before.items():
        assert after[key].first_seen_at == row.first_seen_at, key
        assert after[key].last_seen_at >= row.last_seen_at, key


@dataclass(frozen=True)
class Scene:
    """The tenant after its clean sync: what the payload tests sync again and compare against."""

    db: Database
    conn: psycopg.Connection
    emulator: Emulator
    tenant_id: str
    clean: dict[tuple[str, str], Row]

    def sync(self, transport: httpx.BaseTransport | None = None) -> SyncResult:
        return sync(self.db, self.emulator, transport)

    def inventory_kept(self) -> dict[tuple[str, str], Row]:
        """The tenant's inventory now, asserting first that nothing of the clean one was lost."""
        after = inventory(self.conn, self.tenant_id)
        assert_nothing_lost(self.clean, after)
        return after


@pytest.fixture
def scene(
    db: Database,
    conn: psycopg.Connection,
    emulator: Emulator,
    contoso: TenantSpec,
    clean: dict[tuple[str, str], Row],
) -> Scene:
    return Scene(db, conn, emulator, contoso.tenant_id, clean)


# --- bytes the emulator cannot send: JSON escapes of surrogates, rewritten on the wire ------------------
MARK = "HOSTILE-MARK"


@pytest.fixture
def wire(emulator: Emulator) -> Iterator[RewritingTransport]:
    """Real TLS to the emulator, with markers in its answers replaced by what it cannot send."""
    transport = RewritingTransport(
        emulator.ca_path,
        {
            MARK.encode() + b"-LONE": b"\\ud800",
            MARK.encode() + b"-PAIR": b"\\ud83d\\ude00",
            b'"MARK-OBJECT-ID"': b'{"nested":1}',
            b'"MARK-LIST-ID"': b'["a"]',
        },
    )
    yield transport
    transport.close()


# --- hostile payloads through the whole pipeline --------------------------------------------------------
LONG_NAME = "L" * 10_000
# RTL override + pop, a ZWJ emoji sequence, a zero-width joiner inside a word, RLM + Hebrew, BOM, invisible
UNICODE_NAME = (
    "\u202eexe.tnemyap\u202c \U0001f469\u200d\U0001f4bb a\u200db \u200f\u05e9\u05dc\u05d5\u05dd \ufeff\u2063"
)
GOOD_PAYLOADS: dict[str, dict[str, Any]] = {
    "long-name": {"id": "hostile-long-name", "displayName": LONG_NAME},
    "nul": {
        "id": "hostile-\x00nul",
        "displayName": "before\x00after",
        "version": "1\x002",
        "roleScopeTagIds": ["0\x00", "1"],
        "secret\x00key": SECRET_PREFIX + "nul",
    },
    "unicode": {"id": "hostile-unicode", "displayName": UNICODE_NAME},
    "int-id": {"id": 424242, "displayName": "an integer id"},
    "odd-types": {
        "id": "hostile-odd-types",
        "displayName": ["not", "a", "string"],
        "version": {"x": 1},
        "createdDateTime": "yesterday",
        "roleScopeTagIds": "0",
    },
}
# Each of these must be counted and skipped: (payload, code).
BAD_PAYLOADS: list[tuple[dict[str, Any], str]] = [
    ({"id": "", "displayName": "empty id"}, "item_without_id"),
    ({"id": "   ", "displayName": "blank id"}, "item_without_id"),
    ({"id": None, "displayName": "null id"}, "item_without_id"),
    # The emulator cannot hold an object or list id (emulator/graph.py hashes ids): rewritten on the wire.
    ({"id": "MARK-OBJECT-ID", "displayName": "object id"}, "item_without_id"),
    ({"id": "MARK-LIST-ID", "displayName": "list id"}, "item_without_id"),
    ({"id": 1.5, "displayName": "float id"}, "item_without_id"),
    ({"id": True, "displayName": "boolean id"}, "item_without_id"),
    ({"id": "x" * 600, "displayName": "over-long id"}, "item_invalid"),
]


def test_hostile_payloads_are_stored_sanitised_or_counted_and_skipped_and_nothing_is_lost(
    scene: Scene, wire: RewritingTransport
) -> None:
    emulator, conn, tid = scene.emulator, scene.conn, scene.tenant_id
    for payload in GOOD_PAYLOADS.values():
        emulator.add_object(tid, DC, payload)
    for payload, _ in BAD_PAYLOADS:
        emulator.add_object(tid, DC, payload)
    gone = emulator.objects(tid, "roleScopeTag")[-1]["id"]
    emulator.remove_object(tid, "roleScopeTag", gone)

    result = scene.sync(wire)

    # Every type was read; the bad items are counted and named, not fatal.
    assert result.status == "succeeded" and result.had_errors
    assert set(result.error_codes) == {code for _, code in BAD_PAYLOADS}
    dc = run_types(conn, result.sync_run_id)[DC]
    assert (dc["status"], dc["items_errors"]) == ("succeeded", len(BAD_PAYLOADS))
    after = scene.inventory_kept()
    new = {k: r for k, r in after.items() if k not in scene.clean}
    stored_ids = ("hostile-long-name", "hostile-nul", "hostile-unicode", "424242", "hostile-odd-types")
    assert set(new) == {(DC, i) for i in stored_ids}

    long_name = new[(DC, "hostile-long-name")].display_name
    assert long_name is not None and len(long_name) == MAX_NAME_CHARS and long_name.endswith("…")
    nul = new[(DC, "hostile-nul")]
    assert nul.display_name == "beforeafter"
    assert nul.meta["version"] == "12" and nul.meta["scope_tag_ids"] == ["0", "1"]
    assert new[(DC, "hostile-unicode")].display_name == UNICODE_NAME, "unicode must round-trip exactly"
    assert new[(DC, "424242")].display_name == "an integer id"
    odd = new[(DC, "hostile-odd-types")]
    assert odd.display_name is None and "version" not in odd.meta and "created_at" not in odd.meta
    assert odd.meta["scope_tag_ids"] == ["0"]
    assert dc["meta_keys_dropped"] >= 4  # the NUL key, and the odd values that did not fit

    conn.commit()
    leaked = conn.execute(
        "SELECT count(*) FROM inventory_items WHERE tenant_id = %s AND meta_jsonb::text LIKE %s",
        (tid, f"%{SECRET_PREFIX}%"),
    ).fetchone()
    assert leaked == (0,)
    # A run that skipped items never yields high confidence: the removed tag is missing, but low.
    missing = missing_items(tenant_scope(conn, tid), result.selection_hash)
    assert [(i.external_id, i.confidence, i.reason) for i in missing.items] == [
        (gone, "low", "run_incomplete")
    ]


@pytest.mark.parametrize(
    ("fault", "policy_type", "type_status", "codes"),
    [
        ("non_object_item", "roleScopeTag", "succeeded", {"item_invalid"}),
        ("item_without_id", "conditionalAccessPolicy", "succeeded", {"item_without_id"}),
        ("malformed_page", "settingsCatalogPolicy", "failed", {"graph_invalid_response"}),
    ],
)
def test_broken_items_and_pages_are_counted_or_fail_their_type_and_nothing_is_lost(
    scene: Scene, fault: str, policy_type: str, type_status: str, codes: set[str]
) -> None:
    emulator, conn, tid = scene.emulator, scene.conn, scene.tenant_id
    emulator.inject(Fault(fault, tenant_id=tid, policy_type=policy_type))

    result = scene.sync()

    assert set(result.error_codes) == codes and result.had_errors
    assert result.status == ("succeeded" if type_status == "succeeded" else "partial")
    outcome = run_types(conn, result.sync_run_id)[policy_type]
    assert outcome["status"] == type_status
    if type_status == "succeeded":
        # non_object_item puts a string and a number in the page; item_without_id strips one id.
        assert outcome["items_errors"] == (2 if fault == "non_object_item" else 1)
    after = scene.inventory_kept()
    assert set(after) == set(scene.clean), "a broken page or item must neither delete nor invent rows"
    others = [k for k in TYPES if k != policy_type]
    assert {k for k, r in after.items() if r.last_seen_sync_run_id == result.sync_run_id} >= expected_ids(
        emulator, tid, others
    )
    missing = missing_items(tenant_scope(conn, tid), result.selection_hash)
    assert missing.high == 0, "could-not-look must never read as gone"
    if fault == "item_without_id":  # the object whose id was stripped was not observed: low, not high
        assert [(i.policy_type, i.confidence) for i in missing.items] == [(policy_type, "low")]
    if fault == "malformed_page":
        assert {(i.policy_type, i.reason) for i in missing.items} == {(policy_type, "type_failed")}


def test_escaped_surrogate_pairs_round_trip(scene: Scene, wire: RewritingTransport) -> None:
    pair = {"id": "hostile-pair", "displayName": f"smile {MARK}-PAIR"}
    scene.emulator.add_object(scene.tenant_id, DC, pair)
    result = scene.sync(wire)
    assert (result.status, result.had_errors) == ("succeeded", False)
    after = scene.inventory_kept()
    assert after[(DC, "hostile-pair")].display_name == "smile \U0001f600"


@pytest.mark.parametrize(
    "payload",
    [
        {"id": "hostile-lone-name", "displayName": f"bad {MARK}-LONE name"},
        {"id": "hostile-lone-meta", "displayName": "bad version", "version": f"{MARK}-LONE"},
        {"id": f"hostile-{MARK}-LONE-id", "displayName": "bad id"},
    ],
    ids=["name", "meta", "id"],
)
def test_a_lone_surrogate_is_sanitised_or_counted_never_fatal(
    scene: Scene, wire: RewritingTransport, payload: dict[str, Any]
) -> None:
    scene.emulator.add_object(scene.tenant_id, DC, payload)
    scene.emulator.add_object(scene.tenant_id, DC, {"id": "innocent-neighbour", "displayName": "same page"})

    result = scene.sync(wire)

    after = scene.inventory_kept()
    assert result.status == "succeeded", (result.status, result.error_codes, result.error_message)
    assert run_types(scene.conn, result.sync_run_id)[DC]["status"] == "succeeded"
    assert (DC, "innocent-neighbour") in after, "one bad string must not cost its page"
    hostile = {k: r for k, r in after.items() if k not in scene.clean and k[1] != "innocent-neighbour"}
    assert len(hostile) + result.errors == 1, "the hostile item is stored sanitised, or counted"
    for (_, external_id), row in hostile.items():
        text = external_id + (row.display_name or "") + json.dumps(row.meta, ensure_ascii=False)
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


@pytest.mark.parametrize(
    "hostile",
    [item("lone-name", "x\ud800y"), item("lone-meta", "ok", version="1\ud800"), item("lone-\udfff-id")],
    ids=["name", "meta", "id"],
)
def test_engine_survives_a_decoder_that_yields_lone_surrogates(
    db: Database, conn: psycopg.Connection, hostile: dict[str, Any]
) -> None:
    """Defence in depth below the page decoder: json.loads turns '\\ud800' into a str that neither
    psycopg nor PostgreSQL accept (until normalize.py replaced lone surrogates, such an item cost its
    whole page and failed the run with internal_error / database_error)."""
    register(conn, TenantSpec(TENANT_A, "surrogates", "Surrogates"))
    add_selection(conn, "dc-tags", [DC, "roleScopeTag"])
    graph = MemoryGraph({DC: [[item("good"), hostile]], "roleScopeTag": [[item("1")]]})
    result = run_sync(db, graph, "surrogates", "dc-tags")
    assert result.status == "succeeded", (result.error_codes, result.error_message)
    stored = inventory(conn, TENANT_A)
    assert (DC, "good") in stored and len(stored) == 3, "the hostile item is stored, sanitised"
    for (_, external_id), row in stored.items():
        text = external_id + (row.display_name or "") + json.dumps(row.meta, ensure_ascii=False)
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


def test_an_unexpected_failure_inside_one_type_fails_that_type_only(scene: Scene) -> None:
    """A control character in one type's nextLink (a JSON escape the paging code turns into a URL httpx
    refuses) is a failure of that type: the others are read, the run is `partial`, nothing is lost."""
    wire = RewritingTransport(
        scene.emulator.ca_path,
        {b"/deviceManagement/configurationPolicies?": b"/deviceManagement/configurationPolicies\\u0001?"},
    )
    try:
        result = scene.sync(wire)
    finally:
        wire.close()
    types = run_types(scene.conn, result.sync_run_id)
    sc = types.pop("settingsCatalogPolicy")
    assert sc["status"] == "failed" and sc["error_code"] and sc["pages"] == 1
    assert {k: t["status"] for k, t in types.items()} == dict.fromkeys(types, "succeeded")
    assert result.status == "partial" and result.error_codes == (sc["error_code"],)
    scene.inventory_kept()


# --- tenant and selection input through the command line ------------------------------------------------
def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env={"PYTHONWARNINGS": "ignore"})  # TENANTATLAS_DATABASE_URL: the `db` fixture's


def store_state(conn: psycopg.Connection) -> tuple[Any, ...]:
    conn.commit()
    state = tuple(
        conn.execute(sql).fetchall()
        for sql in (
            "SELECT tenant_id, key, display_name, enabled FROM tenants ORDER BY tenant_id",
            "SELECT name, selection_hash FROM selections ORDER BY name",
            "SELECT count(*) FROM inventory_sync_runs",
            "SELECT count(*), max(last_seen_at) FROM inventory_items",
        )
    )
    conn.commit()
    return state


GUID = "6f1d0a52-8b3e-4c2a-9d71-3e5b8c0f4a21"
ADD = ["tenants", "add", "--tenant-id"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ([*ADD, "not-a-guid", "--key", "evil", "--name", "Evil"], "invalid_tenant_id"),
        ([*ADD, "{" + GUID + "}", "--key", "evil", "--name", "E"], "invalid_tenant_id"),
        ([*ADD, "7" * 10_000, "--key", "evil", "--name", "E"], "invalid_tenant_id"),
        ([*ADD, "../../etc/passwd", "--key", "evil", "--name", "E"], "invalid_tenant_id"),
        (
            [*ADD, "0c9a3f7e-6d21-4b58-8e4f-a7b2d1c63e95", "--key", "Évil key", "--name", "E"],
            "invalid_tenant_key",
        ),
        (
            [*ADD, "0c9a3f7e-6d21-4b58-8e4f-a7b2d1c63e95", "--key", "contoso", "--name", "key taken"],
            "invalid_tenant_key",
        ),
        (["sync", "--tenant", "nobody", "--selection", "all"], "unknown_tenant"),
        (["sync", "--tenant", GUID.upper() + "x", "--selection", "all"], "unknown_tenant"),
        (["sync", "--tenant", "contoso", "--selection", "nope"], "unknown_selection"),
        (["sync", "--tenant", "contoso", "--selection", "all'; DROP TABLE tenants; --"], "unknown_selection"),
        (["missing", "--tenant", "contoso", "--selection", "nope"], "unknown_selection"),
        (["selections", "add", "bad", "--policy-types", f"{DC},notAType"], "unknown_policy_type"),
        (["selections", "add", "all", "--policy-types", "notAType"], "unknown_policy_type"),
        (["selections", "add", "Bad Name", "--policy-types", "deviceConfiguration"], "invalid_selection"),
        (["selections", "add", "empty", "--policy-types", " , ,"], "invalid_selection"),
        (["tenants", "disable", "nobody"], "unknown_tenant"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(a[:24] for a in v)[:60],
)
def test_bad_tenant_and_selection_input_is_refused_with_a_stable_code_and_changes_nothing(
    scene: Scene, args: list[str], code: str
) -> None:
    conn = scene.conn
    before = store_state(conn)
    proc = cli(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert lines and lines[-1].startswith(f"error [{code}]: "), proc.stderr
    assert len(proc.stderr) < 2000, "an error must not echo a huge input back"
    assert "Traceback" not in proc.stderr
    assert store_state(conn) == before, "refused input must change nothing"


def test_odd_unicode_in_a_tenant_name_round_trips_through_the_cli(
    db: Database, conn: psycopg.Connection
) -> None:
    name = "Contoso \u202eltd\u202c \U0001f468\u200d\U0001f469\u200d\U0001f467 \u200b\u05d0"
    proc = cli("tenants", "add", "--tenant-id", GUID.upper(), "--key", "contoso", "--name", name, "--json")
    assert proc.returncode == 0, proc.stderr
    added = json.loads(proc.stdout)
    assert {k: added[k] for k in ("tenant_id", "key", "name", "enabled")} == {
        "tenant_id": GUID, "key": "contoso", "name": name, "enabled": True
    }
    assert added["action"] == "added"
    listed = json.loads(cli("tenants", "list", "--json").stdout)
    assert listed == [{"tenant_id": GUID, "key": "contoso", "name": name, "enabled": True}]


def test_engine_refuses_bad_tenant_input_before_any_request_or_ledger_row(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    with GraphClient(graph_settings(emulator)) as graph:
        for tenant, code in [
            ("not-a-guid", ErrorCode.UNKNOWN_TENANT),
            ("", ErrorCode.UNKNOWN_TENANT),
            ("x" * 10_000, ErrorCode.UNKNOWN_TENANT),
        ]:
            with pytest.raises(TenantAtlasError) as info:
                run_sync(db, graph, tenant, "hostile")
            assert info.value.code == code and len(info.value.message) < 1000
        for tenant in ("../../v1.0/me", "a/b", "x" * 300, "tenant\x00id"):
            with pytest.raises(GraphError) as graph_info:
                list(graph.iter_pages(tenant, DC))
            assert graph_info.value.code == ErrorCode.INVALID_TENANT_ID
        with pytest.raises(TenantAtlasError) as sel_info:
            run_sync(db, graph, "contoso", "no-such-selection")
        assert sel_info.value.code == ErrorCode.UNKNOWN_SELECTION
    assert runs(conn, contoso.tenant_id) == []
    assert emulator.request_log == [], "nothing reached Entra or Graph"


# --- issue 10: hostile page shapes, odd nextLinks, bad values, filtered and case-twin objects ----------
# A sync process that read only clean pages peaks near 100 MB; before the shape limits, the deep_nesting
# page alone took the decoder about a gigabyte, and huge_number killed the process with SIGSEGV.
PEAK_RSS_LIMIT_KIB = 400 * 1024


@pytest.mark.parametrize("fault", ["huge_number", "deep_nesting"])
def test_a_hostile_page_shape_fails_its_type_in_a_real_process_that_survives_in_bounded_memory(
    scene: Scene, fault: str
) -> None:
    scene.emulator.inject(Fault(fault, tenant_id=scene.tenant_id, policy_type=DC))
    proc = spawn_sync(scene.db.url, graph_env(scene.emulator), "contoso", "hostile")
    try:
        outcome = child_result(proc, timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, f"the sync process died (exit {proc.returncode})"
    assert outcome["status"] == "partial" and outcome["error_codes"] == ["graph_invalid_response"]
    types = run_types(scene.conn, outcome["sync_run_id"])
    assert types[DC]["status"] == "failed" and types[DC]["error_code"] == "graph_invalid_response"
    assert "refused before decoding" in types[DC]["error_message"]
    assert {k for k, t in types.items() if t["status"] == "succeeded"} == set(TYPES) - {DC}
    print(f"{fault}: peak RSS of the sync process {outcome['max_rss_kib'] // 1024} MiB")
    assert outcome["max_rss_kib"] < PEAK_RSS_LIMIT_KIB, f"peak RSS {outcome['max_rss_kib'] // 1024} MiB"
    after = scene.inventory_kept()
    assert set(after) == set(scene.clean)


class NextLinkTransport(RewritingTransport):
    """Real TLS to the emulator; every 200 page of one collection gets `next_link` as its nextLink."""

    def __init__(self, ca_path: Any, path_part: str, next_link: str) -> None:
        super().__init__(ca_path, {})
        self._path_part, self._next_link = path_part, next_link

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if self._path_part not in request.url.path or response.status_code != 200:
            return response
        body = json.loads(response.content)
        body["@odata.nextLink"] = self._next_link
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"content-length"]
        return httpx.Response(200, headers=headers, content=json.dumps(body).encode())


@pytest.mark.parametrize(
    "next_link",
    [
        "https://[graph.microsoft.com/beta/deviceManagement/deviceConfigurations?$skiptoken=x",
        "{graph}/beta/deviceManagement/deviceConfigurations?$skiptoken=a\x01b",
        "{graph}/beta/deviceManagement/deviceConfigurations?$skiptoken=a\x7fb",
    ],
    ids=["bracket-host", "control-char", "del-char"],
)
def test_a_nextlink_that_is_no_url_fails_its_type_not_the_run(scene: Scene, next_link: str) -> None:
    link = next_link.replace("{graph}", scene.emulator.graph_url)
    transport = NextLinkTransport(scene.emulator.ca_path, "/deviceConfigurations", link)
    try:
        result = scene.sync(transport)
    finally:
        transport.close()
    assert (result.status, result.error_codes) == ("partial", ("graph_invalid_response",)), result
    types = run_types(scene.conn, result.sync_run_id)
    assert types[DC]["status"] == "failed" and "not a valid URL" in types[DC]["error_message"]
    assert {k for k, t in types.items() if t["status"] == "succeeded"} == set(TYPES) - {DC}
    assert "\x01" not in types[DC]["error_message"] and "\x7f" not in types[DC]["error_message"]
    scene.inventory_kept()


def test_a_timestamp_that_leaves_the_calendar_costs_its_field_not_its_page(scene: Scene) -> None:
    tid = scene.tenant_id
    year_one = {
        "id": "hostile-year-one",
        "displayName": "year one",
        "createdDateTime": "0001-01-01T00:00:00+01:00",
        "lastModifiedDateTime": "9999-12-31T23:59:59-01:00",
        "version": 3,
    }
    scene.emulator.add_object(tid, DC, year_one)
    scene.emulator.add_object(tid, DC, {"id": "innocent-neighbour", "displayName": "same page"})

    result = scene.sync()

    assert (result.status, result.had_errors) == ("succeeded", False), result
    after = scene.inventory_kept()
    odd = after[(DC, "hostile-year-one")]
    assert odd.meta == {"version": "3"} and odd.display_name == "year one"
    assert (DC, "innocent-neighbour") in after
    assert run_types(scene.conn, result.sync_run_id)[DC]["meta_keys_dropped"] >= 2  # the two timestamps


STORE_APP_ID = "0b8f6a3e-5c1d-4e2f-9a7b-6c5d4e3f2a1b"


def test_an_object_that_becomes_filtered_is_seen_never_missing_with_high_confidence(
    db: Database, conn: psycopg.Connection, emulator: Emulator, contoso: TenantSpec
) -> None:
    tid = contoso.tenant_id
    add_selection(conn, "apps", ["mobileApp"])
    app = {"id": STORE_APP_ID, "displayName": "Store app", "@odata.type": "#microsoft.graph.winGetApp",
           "appAvailability": "global", "isAssigned": True}
    emulator.add_object(tid, "mobileApp", app)
    with GraphClient(graph_settings(emulator)) as graph:
        first = run_sync(db, graph, "contoso", "apps")
        assert (first.status, first.had_errors) == ("succeeded", False)
        assert ("mobileApp", STORE_APP_ID) in inventory(conn, tid)
        emulator.remove_object(tid, "mobileApp", STORE_APP_ID)
        emulator.add_object(tid, "mobileApp", {**app, "isAssigned": False})  # unassigned: now filtered
        second = run_sync(db, graph, "contoso", "apps")
    assert (second.status, second.had_errors) == ("succeeded", False)
    assert second.filtered == first.filtered + 1
    row = inventory(conn, tid)[("mobileApp", STORE_APP_ID)]
    assert row.last_seen_sync_run_id == second.sync_run_id, "a filtered observation is an observation"
    missing = missing_items(tenant_scope(conn, tid), second.selection_hash)
    assert STORE_APP_ID not in {i.external_id for i in missing.items}
    assert missing.high == 0


UPPER_ID = "A1B2C3D4-E5F6-4A7B-8C9D-0E1F2A3B4C5D"


def test_ids_differing_only_in_case_are_one_object_never_a_missing_twin(scene: Scene) -> None:
    emulator, conn, tid = scene.emulator, scene.conn, scene.tenant_id
    emulator.add_object(tid, DC, {"id": UPPER_ID, "displayName": "listed in upper case"})
    first = scene.sync()
    emulator.remove_object(tid, DC, UPPER_ID)
    emulator.add_object(tid, DC, {"id": UPPER_ID.lower(), "displayName": "listed in lower case"})
    second = scene.sync()

    assert (first.status, second.status, second.had_errors) == ("succeeded", "succeeded", False)
    after = inventory(conn, tid)
    twins = {k: r for k, r in after.items() if k[1].lower() == UPPER_ID.lower()}
    assert list(twins) == [(DC, UPPER_ID.lower())], "one object, one row, stored lower-case"
    assert twins[(DC, UPPER_ID.lower())].display_name == "listed in lower case"
    missing = missing_items(tenant_scope(conn, tid), second.selection_hash)
    assert missing.items == [], [(i.external_id, i.confidence) for i in missing.items]
