"""The UI's pure parts without a server: cell judgement and tenant order, charts, formats, cursors,
the error-code sentences, the bind rule and the `tenantatlas ui` refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.etree import ElementTree

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from tenantatlas_pipelines.error_docs import parse
from tenantatlas_pipelines.errors import ErrorCode, TenantAtlasError
from tenantatlas_pipelines.ui import charts, format, paging, portfolio
from tenantatlas_pipelines.ui.app import csv_safe, object_url, url
from tenantatlas_pipelines.ui.error_docs import error_docs
from tenantatlas_pipelines.ui.queries import CoverageCell, LastRun, TenantInfo, like_pattern
from tenantatlas_pipelines.ui.security import allowed_hosts, check_bind, is_loopback

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
STALE = timedelta(hours=48)


def cell(
    tenant: str = "t1",
    good: timedelta | None = timedelta(hours=1),
    status: str | None = "succeeded",
    **kw: object,
) -> CoverageCell:
    return CoverageCell(
        tenant_id=tenant,
        policy_type=str(kw.pop("policy_type", "deviceConfiguration")),
        last_good_at=None if good is None else NOW - good,
        items=kw.pop("items", 5),  # type: ignore[arg-type]
        last_status=status,
        last_error_code=kw.pop("code", None),  # type: ignore[arg-type]
        last_at=NOW,
        missing_high=int(kw.pop("high", 0)),  # type: ignore[call-overload]
        missing_low=int(kw.pop("low", 0)),  # type: ignore[call-overload]
    )


@pytest.mark.parametrize(
    ("c", "state"),
    [
        (cell(), "ok"),
        (cell(good=timedelta(hours=49)), "stale"),
        (cell(good=timedelta(hours=47)), "ok"),
        (cell(good=None, status=None), "never"),
        (cell(good=None, status="skipped"), "never"),
        (cell(status="failed", code="graph_forbidden"), "failing"),  # a fresh older read does not hide it
        (cell(good=None, status="failed"), "failing"),
        (cell(good=timedelta(days=9), status="skipped"), "stale"),
    ],
)
def test_cell_state(c: CoverageCell, state: str) -> None:
    assert portfolio.cell_state(c, NOW, STALE) == state


def _rows() -> list[portfolio.TenantRow]:
    tenants = [TenantInfo(f"id-{k}", k, k.title(), True) for k in ("alpha", "bravo", "charlie")]
    cells = [
        cell("id-alpha", items=10, high=2),
        cell("id-alpha", policy_type="mobileApp", items=3),
        cell("id-bravo", status="failed", code="graph_forbidden", items=50, low=7),
        cell("id-bravo", policy_type="mobileApp", good=timedelta(days=5), items=1),
        cell("id-charlie", good=timedelta(days=3), items=20),
    ]
    runs = {"id-alpha": LastRun("id-alpha", 9, "succeeded", NOW, NOW)}
    return portfolio.build_rows(tenants, cells, runs, ["deviceConfiguration", "mobileApp"], NOW, STALE)


def test_build_rows_totals() -> None:
    alpha, bravo, charlie = _rows()
    assert (alpha.items, alpha.missing_high, alpha.missing_low, alpha.failing, alpha.stale) == (
        13,
        2,
        0,
        0,
        0,
    )
    assert (bravo.items, bravo.missing_low, bravo.failing, bravo.stale) == (51, 7, 1, 1)
    assert [v.state for v in charlie.cells] == ["stale", "never"] and charlie.stale == 2
    assert alpha.last_run is not None and bravo.last_run is None
    assert bravo.oldest_good == NOW - timedelta(days=5)
    assert [r.has_problem for r in (alpha, bravo, charlie)] == [True, True, True]


@pytest.mark.parametrize(
    ("sort", "descending", "order"),
    [
        ("tenant", False, ["alpha", "bravo", "charlie"]),
        ("tenant", True, ["charlie", "bravo", "alpha"]),
        ("items", True, ["bravo", "charlie", "alpha"]),
        ("missing_high", True, ["alpha", "bravo", "charlie"]),
        ("missing_low", True, ["bravo", "alpha", "charlie"]),
        ("failing", True, ["bravo", "alpha", "charlie"]),
        ("stale", True, ["charlie", "bravo", "alpha"]),
        ("oldest", False, ["bravo", "charlie", "alpha"]),
        ("type:deviceConfiguration", True, ["bravo", "charlie", "alpha"]),
        ("type:mobileApp", True, ["charlie", "bravo", "alpha"]),  # never read, then stale since 5 days
        ("nonsense", False, ["alpha", "bravo", "charlie"]),
    ],
)
def test_sort_rows(sort: str, descending: bool, order: list[str]) -> None:
    assert [r.tenant.key for r in portfolio.sort_rows(_rows(), sort, descending)] == order


def test_filter_rows() -> None:
    rows = _rows()
    assert [r.tenant.key for r in portfolio.filter_rows(rows, "BRA", False)] == ["bravo"]
    assert [r.tenant.key for r in portfolio.filter_rows(rows, "Charlie", True)] == ["charlie"]
    fine = portfolio.build_rows(
        [TenantInfo("x", "x", "X", True)], [cell("x")], {}, ["deviceConfiguration"], NOW, STALE
    )
    assert portfolio.filter_rows(fine, "", True) == []


# --- charts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "top"), [(0, 1), (0.3, 0.5), (1, 1), (7, 10), (42, 50), (101, 200), (5000, 5000)]
)
def test_nice_ceiling(value: float, top: float) -> None:
    assert charts.nice_ceiling(value) == pytest.approx(top)


@given(st.floats(min_value=1e-6, max_value=1e9))
def test_nice_ceiling_is_at_least_the_value_and_under_ten_times(value: float) -> None:
    top = charts.nice_ceiling(value)
    assert value * (1 - 1e-9) <= top < value * 10


def test_bar_chart_is_valid_svg_with_one_linked_bar_per_point_and_escaped_text() -> None:
    points = [
        charts.Point(1.5, "s-succeeded", "run 1 <b>", "/runs/1"),
        charts.Point(None, "s-running", "run 2 & co", "/runs/2"),
        charts.Point(3.0, "s-failed", '"><script>alert(1)</script>', None),
    ]
    svg = str(charts.bar_chart(points, title="<t>", unit=" s", first="a", last="b"))
    tree = ElementTree.fromstring(svg)  # well-formed XML: every text escaped
    ns = "{http://www.w3.org/2000/svg}"
    bars = tree.findall(f".//{ns}rect")
    assert [b.get("class") for b in bars] == ["bar s-succeeded", "bar s-running", "bar s-failed"]
    assert [a.get("href") for a in tree.findall(f".//{ns}a")] == ["/runs/1", "/runs/2"]
    heights = [float(b.get("height") or 0) for b in bars]
    assert heights[1] == 0 and heights[2] > heights[0] > 0  # 3.0 s is taller than 1.5 s
    assert "<script" not in svg and "&lt;script&gt;" in svg
    assert ">5 s</text>" in svg and ">2.5 s</text>" in svg  # axis: 0, half and the nice ceiling of 3.0
    assert " style=" not in svg


def test_line_chart_skips_points_without_value() -> None:
    points = [
        charts.Point(float(v) if v is not None else None, "s-succeeded", f"{v}") for v in (10, None, 30, 20)
    ]
    svg = str(charts.line_chart(points, title="Objects", unit="", first="a", last="b"))
    tree = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(tree.findall(f".//{ns}circle")) == 3
    line = tree.find(f".//{ns}polyline")
    assert line is not None and len((line.get("points") or "").split()) == 3


def test_line_chart_with_a_fixed_top_keeps_the_axis_and_places_points_against_it() -> None:
    points = [charts.Point(v, "s-succeeded", f"{v}") for v in (50.0, 25.0)]
    svg = str(charts.line_chart(points, title="Types", unit=" %", first="a", last="b", top=100.0))
    assert ">100 %</text>" in svg and ">50 %</text>" in svg  # not the nice ceiling of 50
    ns = "{http://www.w3.org/2000/svg}"
    plot_h = charts.HEIGHT - charts.PAD_TOP - charts.PAD_BOTTOM
    ys = [float(c.get("cy") or "nan") for c in ElementTree.fromstring(svg).findall(f".//{ns}circle")]
    assert ys == pytest.approx([charts.PAD_TOP + plot_h * 0.5, charts.PAD_TOP + plot_h * 0.75], abs=0.1)


# --- formats, urls, cursors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "0 s"), (45, "45 s"), (60, "1 min"), (3599, "59 min"), (3600 * 3, "3 h"), (86400 * 3, "3 d")],
)
def test_age(seconds: int, text: str) -> None:
    assert format.age(timedelta(seconds=seconds)) == text


def test_formats() -> None:
    assert format.age(None) == "never"
    assert format.duration(None) == "running" and format.duration(0.213) == "0.21 s"
    assert format.duration(14.4) == "14 s" and format.duration(185) == "3 min 5 s"
    assert format.count(1234567) == "1\u2009234\u2009567" and format.count(None) == "—"
    assert format.timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02 03:04"
    assert format.short_code("graph_forbidden") == "403" and format.short_code(None) == "failed"
    assert format.short_code("graph_paging_loop") == "paging loop"


def test_urls_and_csv_safety() -> None:
    assert url("/t", q="a b", type=None, state="") == "/t?q=a+b"
    assert object_url("contoso", "mobileApp", "a/b?c") == "/tenants/contoso/objects/mobileApp/a%2Fb%3Fc"
    assert [csv_safe(v) for v in ("=1+1", "+x", "-x", "@x", "plain")] == [
        "'=1+1",
        "'+x",
        "'-x",
        "'@x",
        "plain",
    ]
    assert like_pattern("50%_off\\") == "%50\\%\\_off\\\\%"


@given(st.lists(st.text(), min_size=3, max_size=3))
def test_cursor_round_trip(key: list[str]) -> None:
    assert paging.decode(paging.encode(key), 3) == tuple(key)


@pytest.mark.parametrize("value", ["", "!!!", "W10", paging.encode(["a", "b"]), "eyJhIjoxfQ"])
def test_bad_cursor(value: str) -> None:
    with pytest.raises(paging.BadCursor):
        paging.decode(value, 3)


# --- error sentences ------------------------------------------------------------------------------------


def test_every_error_code_has_its_sentence_from_the_docs() -> None:
    docs = error_docs()
    assert set(docs) == {c.value for c in ErrorCode}
    assert docs["graph_forbidden"].meaning == "403: the app lacks the permission for this policy type."
    todo = docs["graph_forbidden"].what_to_do
    assert todo == "Grant the Graph application permission named in the message."


def test_parse_ignores_other_tables_and_strips_backticks() -> None:
    text = "| code | area |\n| --- | --- |\n| `x_y` | a | uses `z` | do `w` |\n| plain | b | c | d |\n"
    assert parse(text) == {"x_y": parse(text)["x_y"]} and parse(text)["x_y"].meaning == "uses z"


# --- bind rule and the command --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("10.0.0.5", False), ("ui.example.net", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_check_bind() -> None:
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "x" * 16)
    with pytest.raises(TenantAtlasError) as err:
        check_bind("0.0.0.0", None)
    assert err.value.code == ErrorCode.CONFIG_INVALID and "TENANTATLAS_UI_TOKEN" in err.value.message
    with pytest.raises(TenantAtlasError) as err:
        check_bind("127.0.0.1", "short")
    assert err.value.code == ErrorCode.CONFIG_INVALID
    assert allowed_hosts("0.0.0.0", "x" * 16) == ["*"]
    assert "localhost" in allowed_hosts("127.0.0.1", None) and "*" not in allowed_hosts("127.0.0.1", "x" * 16)


def test_ui_command_refuses_a_public_bind_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from tenantatlas_pipelines.cli import cli

    monkeypatch.delenv("TENANTATLAS_UI_TOKEN", raising=False)
    # An unreachable database proves the refusal comes first: nothing is contacted.
    monkeypatch.setenv("TENANTATLAS_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(cli, ["ui", "--host", "0.0.0.0", "--port", "8089"])
    assert result.exit_code == 2
    assert "error [config_invalid]" in result.output and "TENANTATLAS_UI_TOKEN" in result.output
