"""The streaming page decoder (`paging.decode_page`) on its own, without HTTP.

The client feeds it the body of every 2xx Graph page chunk by chunk as it arrives. Whatever the chunk
boundaries (inside a key, a number, an escape or a multi-byte character), the answer must be the one
json.loads gives for the whole body, with long strings cut where the decoder documents it; and every
body that cannot be trusted to be a whole page must be refused with graph_invalid_response.
"""

from __future__ import annotations

import itertools
import json
import pickle
import threading
import time
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenantatlas_pipelines import normalize
from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.graph.errors import GraphError
from tenantatlas_pipelines.graph.paging import MAX_STRING_CHARS, NEXT_LINK, decode_page, parse_page

URL = "https://graph.test/beta/deviceAppManagement/mobileApps?$skiptoken=s3cr3t"
NEXT = "https://graph.test/beta/deviceAppManagement/mobileApps?$skiptoken=next"
LONG = MAX_STRING_CHARS + 10


def reference(value: Any) -> Any:
    """`value` as decode_page returns it: every string longer than MAX_STRING_CHARS, wherever it is
    in an item, cut to that length (object keys are never cut)."""
    if isinstance(value, str):
        return value[:MAX_STRING_CHARS]
    if isinstance(value, dict):
        return {k: reference(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reference(v) for v in value]
    return value


def reference_page(body: bytes) -> tuple[list[Any], str | None]:
    loaded = json.loads(body)
    return reference(loaded["value"]), loaded.get(NEXT_LINK) or None


def split(body: bytes, cuts: list[int]) -> list[bytes]:
    return [body[a:b] for a, b in itertools.pairwise(sorted({0, len(body), *cuts}))]


def one_byte_chunks(body: bytes) -> Iterator[bytes]:
    return (body[i : i + 1] for i in range(len(body)))


def invalid(chunks: Any) -> GraphError:
    with pytest.raises(GraphError) as info:
        decode_page(chunks, URL)
    assert info.value.code == ErrorCode.GRAPH_INVALID_RESPONSE and not info.value.retryable
    assert "s3cr3t" not in str(info.value)
    return info.value


# -- any chunking gives json.loads's answer ------------------------------------------------------------
long_text = st.builds(
    lambda c, n: c * n,
    st.characters(exclude_categories=("Cs",)),
    st.integers(MAX_STRING_CHARS - 2, MAX_STRING_CHARS + 40),
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | long_text
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
items_strategy = st.lists(
    st.dictionaries(st.text(max_size=8), json_values, max_size=5) | json_values, max_size=6
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=items_strategy,
    link=st.sampled_from([None, "", NEXT, NEXT + "x" * LONG]),
    link_first=st.booleans(),
    ascii_only=st.booleans(),
    indent=st.sampled_from([None, 1]),
    count=st.booleans(),
    data=st.data(),
)
def test_any_chunking_gives_the_json_loads_answer(
    items: list[Any],
    link: str | None,
    link_first: bool,
    ascii_only: bool,
    indent: int | None,
    count: bool,
    data: st.DataObject,
) -> None:
    doc: dict[str, Any] = {"@odata.context": "https://graph.test/$metadata#mobileApps"}
    if count:
        doc["@odata.count"] = len(items)
    if link is not None and link_first:
        doc[NEXT_LINK] = link
    doc["value"] = items
    if link is not None and not link_first:
        doc[NEXT_LINK] = link
    body = json.dumps(doc, ensure_ascii=ascii_only, indent=indent).encode()
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=12), label="split points")
    expected = reference_page(body)
    got = decode_page(split(body, cuts), URL)
    assert got == expected
    assert repr(got) == repr(expected)  # the same types too: floats stay floats, ints ints
    assert parse_page(body, URL) == expected


def test_every_single_split_and_one_byte_chunks() -> None:
    body = (
        '\ufeff \n{"@odata.context": "c\\u00e9", "value": [{"id": "a",'
        ' "displayName": "caf\u00e9 \U0001f600 \u4e2d", "n": -1.5e3, "min": -9223372036854775808,'
        ' "big": 123456789012345678901234567890, "huge": 1e400, "z": -0.0, "ok": true, "none": null,'
        ' "esc": "\\"\\\\\\/\\b\\f\\n\\r\\t\\ud83d\\ude00"}, "plain", 7],'
        f' "{NEXT_LINK}": "{NEXT}"}}\r\n'
    ).encode()
    expected = (json.loads(body.decode("utf-8-sig"))["value"], NEXT)
    assert repr(decode_page(one_byte_chunks(body), URL)) == repr(expected)
    for i in range(len(body) + 1):
        assert decode_page([body[:i], body[i:]], URL) == expected, i


# -- bodies that are not a whole page ------------------------------------------------------------------
def test_a_body_truncated_anywhere_is_invalid() -> None:
    body = json.dumps({"value": [{"id": "a", "n": 1.25, "s": "\u00e9"}, [1, {}]], NEXT_LINK: NEXT}).encode()
    for i in range(len(body)):
        error = invalid([body[:i]])
        assert "truncated" in error.message or "not a JSON object" in error.message


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   \n",
        b"\xef\xbb",
        b"[]",
        b'[{"value": []}]',
        b'"text"',
        b"5",
        b"null",
        b"<html>oops</html>",
        b"\xff\xfe\x00",
    ],
)
def test_a_body_that_is_not_an_object_is_invalid(body: bytes) -> None:
    invalid([body])
    invalid(one_byte_chunks(body))


def test_a_non_object_is_refused_at_its_first_significant_byte() -> None:
    def html() -> Iterator[bytes]:
        yield b"  <html>"
        raise AssertionError("read past the first chunk")

    assert "not a JSON object" in invalid(html()).message


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"value": {}}',
        b'{"value": null}',
        b'{"value": "x"}',
        b'{"value": 1}',
        b'{"@odata.nextLink": "https://graph.test/x"}',
        b'{"values": []}',
        b'{"x": {"value": []}}',
    ],
)
def test_an_object_without_a_value_list_is_invalid(body: bytes) -> None:
    assert "'value' list" in invalid([body]).message


@pytest.mark.parametrize("link", ["5", "true", "{}", "[]", '["https://graph.test/x"]', "1.5"])
@pytest.mark.parametrize("link_first", [True, False])
def test_a_non_string_next_link_is_invalid(link: str, link_first: bool) -> None:
    body = (
        f'{{"{NEXT_LINK}": {link}, "value": []}}' if link_first else f'{{"value": [], "{NEXT_LINK}": {link}}}'
    ).encode()
    assert NEXT_LINK in invalid(one_byte_chunks(body)).message


@pytest.mark.parametrize(
    "body",
    [
        b'{"value": []} x',
        b'{"value": []}{}',
        b'{"value": [1,]}',
        b'{"value": [], }',
        b"{'value': []}",
        b'{"value": [NaN]}',
        b'{"value": ["\xff"]}',
        b'{"value": ["\xc3"]}',
        b'{"value": [01]}',
    ],
)
def test_malformed_json_is_invalid(body: bytes) -> None:
    invalid([body])
    invalid(one_byte_chunks(body))


def test_odd_but_valid_pages() -> None:
    assert decode_page([b'{"value": [], "@odata.nextLink": ""}'], URL) == ([], None)
    assert decode_page([b'{"value": [], "@odata.nextLink": null}'], URL) == ([], None)
    assert decode_page([b"", b'{"value":', b"", b"[]}", b""], URL) == ([], None)
    # a repeated member: the last one wins, as with json.loads
    assert decode_page(
        [b'{"value": [1], "value": [2], "@odata.nextLink": "a", "@odata.nextLink": "b"}'], URL
    ) == ([2], "b")


# -- what the items look like ----------------------------------------------------------------------------
def test_non_object_items_are_kept_for_the_normaliser_to_count() -> None:
    items = [1, "unexpected-string-item", None, True, 2.5, [1, "x"], {"id": "a"}, 42]
    assert decode_page([json.dumps({"value": items}).encode()], URL) == (items, None)


def test_long_strings_are_cut_where_documented() -> None:
    blob = "QUJD" * 8000  # a 32,000-character base64 icon
    item = {
        "id": "app",
        "displayName": "\u00e9" * LONG,
        "largeIcon": {"type": "image/png", "value": blob},
        "roleScopeTagIds": ["0", "x" * LONG],
        "nested": [{"script": blob}, [[blob, 1.5]]],
        blob: "a key is never cut",
    }
    body = json.dumps({"value": [item, blob], NEXT_LINK: NEXT + "&x=" + "y" * LONG}).encode()
    items, link = decode_page(split(body, list(range(0, len(body), 4096))), URL)
    got = items[0]
    assert got["displayName"] == "\u00e9" * MAX_STRING_CHARS
    assert got["largeIcon"] == {"type": "image/png", "value": blob[:MAX_STRING_CHARS]}
    assert got["roleScopeTagIds"] == ["0", "x" * MAX_STRING_CHARS]
    assert got["nested"] == [{"script": blob[:MAX_STRING_CHARS]}, [[blob[:MAX_STRING_CHARS], 1.5]]]
    assert got[blob] == "a key is never cut"
    assert items[1] == blob[:MAX_STRING_CHARS]
    assert link == NEXT + "&x=" + "y" * LONG  # the nextLink is never cut
    assert got == reference(item)


def test_max_string_chars_is_above_every_normalize_limit() -> None:
    limits = [getattr(normalize, name) for name in dir(normalize) if name.startswith("MAX_")]
    assert limits and all(limit < MAX_STRING_CHARS for limit in limits)


def test_decoded_objects_are_plain_dicts_to_their_users() -> None:
    plain = {"id": "a", "tags": ["x"], "n": {"k": 1.5}}
    items, _ = decode_page([json.dumps({"value": [plain]}).encode()], URL)
    item = items[0]
    assert isinstance(item, dict) and isinstance(item["n"], dict) and item == plain
    item["later"] = "z" * LONG  # outside a decode nothing is cut
    item["list"] = []
    item["number"] = Decimal("1.5")
    assert item["later"] == "z" * LONG and isinstance(item["number"], Decimal)
    del item["later"], item["list"], item["number"]
    assert pickle.loads(pickle.dumps(items)) == items
    assert json.loads(json.dumps(items)) == items


# -- failures of the source, threads, memory -------------------------------------------------------------
def test_a_transport_error_propagates_unchanged_and_leaves_no_state() -> None:
    body = json.dumps(
        {"value": [{"id": str(i), "s": "y" * LONG, "l": ["z" * LONG]} for i in range(50)], NEXT_LINK: NEXT}
    ).encode()

    def dropped() -> Iterator[bytes]:
        yield body[: len(body) // 2]
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")

    with pytest.raises(httpx.RemoteProtocolError):
        decode_page(dropped(), URL)
    # nothing of the failed decode lingers in this thread: the next page decodes normally
    assert decode_page([body], URL) == reference_page(body)
    items, _ = decode_page([b'{"value": [{}]}'], URL)
    items[0]["s"] = "y" * LONG
    assert items[0]["s"] == "y" * LONG


def test_a_decode_inside_a_chunk_source_does_not_disturb_the_outer_one() -> None:
    inner: list[Any] = []

    def source() -> Iterator[bytes]:
        yield b'{"value": [{"a": [1.5], "b": 2.5'
        inner.append(decode_page([b'{"value": [{"x": [0.5]}]}'], URL))
        yield b', "c": "' + b"y" * LONG + b'"}]}'

    assert decode_page(source(), URL) == ([{"a": [1.5], "b": 2.5, "c": "y" * MAX_STRING_CHARS}], None)
    assert inner == [([{"x": [0.5]}], None)]
    assert repr(decode_page(source(), URL)[0][0]["a"]) == "[1.5]"  # a float, not Decimal('1.5')


def test_threads_decoding_at_once_do_not_mix_their_pages() -> None:
    bodies = [
        json.dumps(
            {
                "value": [
                    {"id": f"{t}-{i}", "l": [f"{t}" * LONG, i + 0.5], "s": f"{t}" * LONG} for i in range(200)
                ],
                NEXT_LINK: f"{NEXT}{t}",
            }
        ).encode()
        for t in range(4)
    ]
    results: dict[int, Any] = {}

    def slow(body: bytes) -> Iterator[bytes]:
        for i in range(0, len(body), 997):
            time.sleep(0)  # let the other threads run between chunks
            yield body[i : i + 997]

    def work(t: int) -> None:
        results[t] = decode_page(slow(bodies[t]), URL)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for t, body in enumerate(bodies):
        assert results[t] == reference_page(body)


def test_memory_stays_far_below_the_body() -> None:
    """A 24 MB page of 400 items with 60 KB icons, fed in 64 KB chunks: each icon is cut as it is
    parsed, so the decoder's peak is about the cut page, not the body (nor 400 icons)."""
    icon = "QUJD" * 15_000
    n_items = 400

    def chunks() -> Iterator[bytes]:
        head = b'{"@odata.context": "c", "value": ['
        pending = head
        for i in range(n_items):
            item = json.dumps(
                {
                    "id": str(i),
                    "displayName": f"app \u00e9 {i}",
                    "largeIcon": {"type": "image/png", "value": icon},
                }
            ).encode()
            pending += (b"," if i else b"") + item
            while len(pending) >= 65536:
                yield pending[:65536]
                pending = pending[65536:]
        yield pending + f'], "{NEXT_LINK}": "{NEXT}"}}'.encode()

    body_size = sum(len(c) for c in chunks())
    tracemalloc.start()
    try:
        items, link = decode_page(chunks(), URL)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert link == NEXT and len(items) == n_items
    assert items[-1]["largeIcon"]["value"] == icon[:MAX_STRING_CHARS]
    assert body_size > 20_000_000
    assert peak < 4_000_000, f"decoder peak {peak:,} bytes for a {body_size:,}-byte body"
