"""GraphClient request, retry and paging logic without a network.

httpx's own in-process transport stands in for Graph and a stub stands in for MSAL; sleep and time are
injected, so every retry rule is checked exactly and instantly. Real TLS, MSAL and real time are
covered by test_graph_e2e.py against the emulator.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.graph.auth import _form
from tenantatlas_pipelines.graph.client import GraphClient, Page, RequestStats
from tenantatlas_pipelines.graph.errors import GraphError
from tenantatlas_pipelines.graph.paging import (
    MAX_CONSECUTIVE_EMPTY_PAGES,
    LoopGuard,
    first_url,
    parse_page,
)
from tenantatlas_pipelines.graph.settings import GraphSettings
from tenantatlas_pipelines.policy_types import REGISTRY, PolicyType

GRAPH = "https://graph.test"
INTENTS = f"{GRAPH}/beta/deviceManagement/intents"
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]


class StubTokens:
    """Counts token requests; hands out 'tok-N' so a refresh is visible in the Authorization header."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.version = 1

    def token(self, tenant_id: str, *, force_refresh: bool = False) -> str:
        self.calls.append((tenant_id, force_refresh))
        if force_refresh:
            self.version += 1
        return f"tok-{self.version}"

    def close(self) -> None:
        pass


def make_client(handler: Handler, **overrides: Any) -> tuple[GraphClient, list[float], StubTokens]:
    sleeps: list[float] = []
    tokens = StubTokens()
    values: dict[str, Any] = {
        "client_id": "c",
        "client_secret": "s",
        "graph_url": GRAPH,
        "authority_host": GRAPH,
        "max_attempts": 4,
        "retry_budget_s": 30.0,
        "backoff_base_s": 1.0,
        "backoff_cap_s": 8.0,
    }
    values.update(overrides)
    clock = [0.0]  # a fake monotonic clock that only the fake sleep moves

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    client = GraphClient(
        GraphSettings(**values),
        token_source=tokens,
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        now=lambda: NOW,
        rand=lambda: 0.5,
        monotonic=lambda: clock[0],
    )
    return client, sleeps, tokens


def page(items: list[Any], next_link: str | None = None, **extra: Any) -> httpx.Response:
    body: dict[str, Any] = {"@odata.context": "ctx", "value": items, **extra}
    if next_link is not None:
        body["@odata.nextLink"] = next_link
    return httpx.Response(200, json=body)


def graph_error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


def scripted(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def read_all(
    client: GraphClient, key: str = "endpointSecurityIntent", stats: RequestStats | None = None
) -> list[Page]:
    return list(client.iter_pages("tenant-a", key, stats=stats))


# -- paging rules (pure) ------------------------------------------------------------------------------
def test_first_url_for_every_registry_type() -> None:
    for policy_type in REGISTRY.values():
        url = first_url(GRAPH + "/", policy_type)
        assert url.startswith(f"{GRAPH}/{policy_type.api_version}/{policy_type.path}")
    assert first_url(GRAPH, REGISTRY["conditionalAccessPolicy"]).startswith(f"{GRAPH}/v1.0/identity/")


def test_first_url_keeps_dollar_options_literal() -> None:
    custom = PolicyType(
        "x", "deviceAppManagement/mobileApps", query={"$filter": "isAssigned eq true", "$top": "999"}
    )
    assert first_url(GRAPH, custom) == (
        f"{GRAPH}/beta/deviceAppManagement/mobileApps?$filter=isAssigned%20eq%20true&$top=999"
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"value": [1, 2',
        b"<html>",
        b"[]",
        b'"text"',
        b"{}",
        b'{"value": {}}',
        b'{"value": null}',
        b'{"value": [], "@odata.nextLink": 5}',
        b"\xff\xfe\x00",
    ],
)
def test_parse_page_rejects_untrustworthy_bodies(body: bytes) -> None:
    with pytest.raises(GraphError) as info:
        parse_page(body, INTENTS + "?$skiptoken=abc")
    assert info.value.code == ErrorCode.GRAPH_INVALID_RESPONSE
    assert "skiptoken" not in str(info.value)


def test_parse_page_accepts_odd_but_valid_pages() -> None:
    assert parse_page(b'{"value": [], "@odata.nextLink": ""}', INTENTS) == ([], None)
    assert parse_page(b'{"value": [1, "x", null, {"id": "a"}], "@odata.count": 99}', INTENTS) == (
        [1, "x", None, {"id": "a"}],
        None,
    )


def test_loop_guard() -> None:
    guard = LoopGuard()
    guard.check_page("u1", [{"id": "a"}])
    guard.check_next("u1", "u2")
    guard.check_page("u2", [{"id": "b"}])
    guard.check_next("u2", "u3")
    with pytest.raises(GraphError, match="graph_paging_loop"):
        guard.check_next("u3", "u1")
    with pytest.raises(GraphError, match="graph_paging_loop"):
        LoopGuard().check_next("u1", "u1")
    same = LoopGuard()
    same.check_page("u1", [{"id": "a"}, {"id": "b"}])
    with pytest.raises(GraphError, match="graph_paging_loop"):
        same.check_page("u2", [{"id": "a"}, {"id": "b"}])
    empties = LoopGuard()
    for _ in range(MAX_CONSECUTIVE_EMPTY_PAGES):
        empties.check_page("u", [])  # empty pages (even many) are legal
    with pytest.raises(GraphError, match="graph_paging_loop"):
        empties.check_page("u", [])
    id_less = LoopGuard()
    id_less.check_page("u1", [1, 2])
    id_less.check_page("u2", [1, 2])  # nothing to compare on: not a loop by itself


# -- paging over the client -------------------------------------------------------------------------
def test_follows_next_links_verbatim_and_tolerates_empty_pages() -> None:
    link2 = f"{GRAPH}/beta/deviceManagement/intents?$skiptoken=a%253D%3D&top=2"
    link3 = f"{GRAPH}/beta/deviceManagement/intents?$skiptoken=b%2Bc&top=2"
    handler, seen = scripted(
        page([{"id": "1"}, {"id": "2"}], link2),
        page([], link3),
        page([{"id": "3"}, "not-a-dict"]),
    )
    client, sleeps, _ = make_client(handler)
    stats = RequestStats()
    pages = read_all(client, stats=stats)
    assert [p.items for p in pages] == [[{"id": "1"}, {"id": "2"}], [], [{"id": "3"}, "not-a-dict"]]
    assert [p.url for p in pages] == [INTENTS, link2, link3]
    assert [p.number for p in pages] == [1, 2, 3]
    assert [str(r.url) for r in seen] == [INTENTS, link2, link3]  # no re-encoding of %253D / %2B
    assert stats.snapshot() == {"requests": 3, "throttled": 0, "retries": 0, "pages": 3, "wait_s": 0}
    assert sleeps == []
    assert all(r.headers["Authorization"] == "Bearer tok-1" for r in seen)
    assert len({r.headers["client-request-id"] for r in seen}) == 3


def test_pages_are_yielded_lazily() -> None:
    handler, seen = scripted(page([{"id": "1"}], f"{INTENTS}?s=2"), page([{"id": "2"}]))
    client, _, _ = make_client(handler)
    pages = client.iter_pages("tenant-a", "endpointSecurityIntent")
    assert seen == []
    next(pages)
    assert len(seen) == 1


def test_next_link_loop_is_detected() -> None:
    link = f"{INTENTS}?$skiptoken=x"
    handler, _ = scripted(page([{"id": "1"}], link), page([{"id": "2"}], link))
    client, _, _ = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == ErrorCode.GRAPH_PAGING_LOOP


def test_same_page_forever_is_detected() -> None:
    handler, _ = scripted(*(page([{"id": "1"}], f"{INTENTS}?$skiptoken={n}") for n in range(5)))
    client, _, _ = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == ErrorCode.GRAPH_PAGING_LOOP


def test_next_link_to_another_origin_is_not_followed() -> None:
    handler, seen = scripted(page([{"id": "1"}], "https://evil.example/beta/x?$skiptoken=1"))
    client, _, _ = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == ErrorCode.GRAPH_INVALID_RESPONSE
    assert len(seen) == 1


@pytest.mark.parametrize("tenant", ["", "../admin", "a/b", "x?y", "-lead", "a" * 300])
def test_malformed_tenant_ids_never_reach_a_url(tenant: str) -> None:
    handler, seen = scripted()
    client, _, tokens = make_client(handler)
    with pytest.raises(GraphError) as info:
        client.acquire_token(tenant)
    assert info.value.code == ErrorCode.INVALID_TENANT_ID
    with pytest.raises(GraphError):
        read_all_for(client, tenant)
    assert seen == [] and tokens.calls == []


def read_all_for(client: GraphClient, tenant: str) -> list[Page]:
    return list(client.iter_pages(tenant, "deviceConfiguration"))


def test_unknown_policy_type() -> None:
    client, _, _ = make_client(scripted()[0])
    with pytest.raises(Exception, match="unknown_policy_type"):
        read_all(client, key="nope")


# -- streamed bodies -----------------------------------------------------------------------------------
class Body(httpx.SyncByteStream):
    """A response body handed out in chunks, optionally failing after some of them; records closing."""

    def __init__(
        self,
        data: bytes,
        *,
        chunk: int = 7,
        fail_after: int | None = None,
        error: Exception | None = None,
        on_chunk: Callable[[], None] | None = None,
    ) -> None:
        self.data, self.chunk, self.fail_after, self.error = data, chunk, fail_after, error
        self.on_chunk = on_chunk
        self.sent = 0
        self.closed = False

    def __iter__(self) -> Any:
        for i in range(0, len(self.data), self.chunk):
            if self.fail_after is not None and self.sent >= self.fail_after:
                raise self.error or httpx.ReadError("connection reset by peer")
            self.sent += 1
            if self.on_chunk:
                self.on_chunk()
            yield self.data[i : i + self.chunk]

    def close(self) -> None:
        self.closed = True


def page_body(items: list[Any], next_link: str | None = None) -> bytes:
    body: dict[str, Any] = {"@odata.context": "ctx", "value": items}
    if next_link is not None:
        body["@odata.nextLink"] = next_link
    return json.dumps(body).encode()


def test_pages_are_decoded_from_the_streamed_body() -> None:
    icon = "QUJD" * 10_000
    items = [{"id": str(i), "displayName": f"caf\u00e9 {i}", "largeIcon": {"value": icon}} for i in range(30)]
    first = Body(page_body(items, f"{INTENTS}?s=2"), chunk=1000)
    last = Body(page_body([{"id": "x"}]), chunk=3)
    handler, _ = scripted(httpx.Response(200, stream=first), httpx.Response(200, stream=last))
    client, _, _ = make_client(handler)
    pages = read_all(client)
    assert [len(p.items) for p in pages] == [30, 1]
    assert pages[0].items[29]["largeIcon"]["value"] == icon[:2048]  # cut while decoding
    assert first.closed and last.closed


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (httpx.ReadError("reset"), ErrorCode.GRAPH_NETWORK),
        (
            httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
            ErrorCode.GRAPH_NETWORK,
        ),
        (httpx.ReadTimeout("slow"), ErrorCode.GRAPH_TIMEOUT),
    ],
)
def test_transport_error_in_the_middle_of_a_body_is_retried(error: Exception, code: ErrorCode) -> None:
    data = page_body([{"id": str(i)} for i in range(50)], f"{INTENTS}?s=2")
    broken = Body(data, fail_after=20, error=error)
    good = Body(data)
    handler, seen = scripted(
        httpx.Response(200, stream=broken), httpx.Response(200, stream=good), page([{"id": "last"}])
    )
    client, sleeps, _ = make_client(handler)
    stats = RequestStats()
    pages = read_all(client, stats=stats)
    # the half-read page is discarded whole: the retry's page is the only one yielded for that URL
    assert [len(p.items) for p in pages] == [50, 1] and [p.number for p in pages] == [1, 2]
    assert str(seen[0].url) == str(seen[1].url) == INTENTS and len(sleeps) == 1
    assert broken.closed and good.closed
    assert stats.requests == 3 and stats.retries == 1 and stats.pages == 2
    # and when every attempt breaks mid-body, the read fails with the transport code, retryable
    handler, seen = scripted(
        *(httpx.Response(200, stream=Body(data, fail_after=5, error=error)) for _ in range(4))
    )
    client, _, _ = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == code and info.value.retryable and len(seen) == 4


def test_invalid_streamed_bodies_are_not_retried_and_are_closed() -> None:
    for data in (
        page_body([{"id": "1"}])[:-3],
        b"<html>proxy error</html>",
        b'{"value": {}}',
        b'{"value": [], "@odata.nextLink": 7}',
    ):
        body = Body(data, chunk=4)
        handler, seen = scripted(httpx.Response(200, stream=body))
        client, sleeps, _ = make_client(handler)
        with pytest.raises(GraphError) as info:
            read_all(client)
        assert info.value.code == ErrorCode.GRAPH_INVALID_RESPONSE and not info.value.retryable
        assert len(seen) == 1 and sleeps == [] and body.closed


def test_a_body_that_cannot_be_uncompressed_is_an_invalid_response() -> None:
    handler, seen = scripted(
        httpx.Response(200, stream=Body(b"not gzip at all"), headers={"Content-Encoding": "gzip"})
    )
    client, sleeps, _ = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == ErrorCode.GRAPH_INVALID_RESPONSE and len(seen) == 1 and sleeps == []


def test_gzip_pages_are_decoded_while_streaming() -> None:
    import gzip

    data = gzip.compress(page_body([{"id": str(i), "s": "y" * 5000} for i in range(40)]))
    gzipped = httpx.Response(200, stream=Body(data, chunk=512), headers={"Content-Encoding": "gzip"})
    handler, _ = scripted(gzipped)
    client, _, _ = make_client(handler)
    (only,) = read_all(client)
    assert [i["id"] for i in only.items] == [str(i) for i in range(40)] and only.items[0]["s"] == "y" * 2048


def test_streamed_error_bodies_are_read_whole_and_mapped() -> None:
    forbidden = json.dumps({"error": {"code": "Forbidden", "message": "Application is not authorized"}})
    body = Body(forbidden.encode(), chunk=5)
    handler, _ = scripted(httpx.Response(403, stream=body))
    client, _, _ = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == ErrorCode.GRAPH_FORBIDDEN and "not authorized" in info.value.message
    assert body.closed
    expired = Body(json.dumps({"error": {"code": "InvalidAuthenticationToken", "message": "x"}}).encode())
    handler, seen = scripted(
        httpx.Response(401, stream=expired), httpx.Response(200, stream=Body(page_body([])))
    )
    client, _, tokens = make_client(handler)
    assert read_all(client)[0].items == [] and len(seen) == 2 and expired.closed
    assert ("tenant-a", True) in tokens.calls


def test_the_per_tenant_bound_covers_reading_the_body() -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def slow_chunk() -> None:
        time.sleep(0.002)

    class Tracked(Body):
        def __iter__(self) -> Any:
            with lock:
                state["now"] += 1
                state["max"] = max(state["max"], state["now"])
            try:
                yield from super().__iter__()
            finally:
                with lock:
                    state["now"] -= 1

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, stream=Tracked(page_body([{"id": request.url.path}]), chunk=4, on_chunk=slow_chunk)
        )

    client, _, _ = make_client(handler, per_tenant_concurrency=1)
    threads = [
        threading.Thread(target=lambda k=key: list(client.iter_pages("tenant-a", k)))
        for key in list(REGISTRY)[:4]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["max"] == 1


# -- retries ------------------------------------------------------------------------------------------
def test_retry_after_is_honoured_exactly() -> None:
    handler, _ = scripted(
        graph_error(429, "TooManyRequests", "slow down", **{"Retry-After": "2.128"}),
        graph_error(503, "ServiceUnavailable", "busy", **{"Retry-After": "Sat, 01 Mar 2025 12:00:03 GMT"}),
        page([{"id": "1"}]),
    )
    client, sleeps, _ = make_client(handler)
    stats = RequestStats()
    assert [p.items for p in read_all(client, stats=stats)] == [[{"id": "1"}]]
    assert sleeps == [pytest.approx(2.128), pytest.approx(3.0)]
    snap = stats.snapshot()
    assert (snap["requests"], snap["throttled"], snap["retries"], snap["pages"]) == (3, 2, 2, 1)
    assert snap["wait_s"] == pytest.approx(5.128)


def test_429_without_retry_after_backs_off_exponentially_with_jitter() -> None:
    handler, _ = scripted(*(graph_error(429, "TooManyRequests", "x") for _ in range(3)), page([]))
    client, sleeps, _ = make_client(handler)
    read_all(client)
    assert sleeps == [0.5, 1.0, 2.0]  # rand=0.5 * min(cap 8, base 1 * 2**(n-1))


def test_retries_exhausted_is_graph_throttled() -> None:
    handler, seen = scripted(
        *(graph_error(429, "TooManyRequests", "x", **{"Retry-After": "1"}) for _ in range(4))
    )
    client, sleeps, _ = make_client(handler)
    stats = RequestStats()
    with pytest.raises(GraphError) as info:
        read_all(client, stats=stats)
    error = info.value
    assert (error.code, error.status, error.retryable) == (ErrorCode.GRAPH_THROTTLED, 429, True)
    assert "4 attempt(s)" in info.value.message
    assert len(seen) == 4 and sleeps == [1.0, 1.0, 1.0]
    assert stats.throttled == 4 and stats.retries == 3


def test_retry_after_beyond_budget_fails_now() -> None:
    handler, seen = scripted(graph_error(429, "TooManyRequests", "x", **{"Retry-After": "31"}))
    client, sleeps, _ = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == ErrorCode.GRAPH_THROTTLED
    assert "exceeds the remaining retry budget" in info.value.message
    assert sleeps == [] and len(seen) == 1


def test_503_and_504_retried_then_server_error() -> None:
    handler, seen = scripted(*(httpx.Response(s) for s in (503, 504, 503, 504)))
    client, sleeps, _ = make_client(handler)
    stats = RequestStats()
    with pytest.raises(GraphError) as info:
        read_all(client, stats=stats)
    assert (info.value.code, info.value.status) == (ErrorCode.GRAPH_SERVER_ERROR, 504)
    assert len(seen) == 4 and len(sleeps) == 3
    assert stats.throttled == 0  # 503 without Retry-After is an outage, not throttling


def test_500_is_retried_only_a_few_times() -> None:
    handler, seen = scripted(*(httpx.Response(500) for _ in range(4)))
    client, _, _ = make_client(handler, max_attempts=8)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == ErrorCode.GRAPH_SERVER_ERROR
    assert len(seen) == 3


def test_middle_of_paging_504_is_absorbed() -> None:
    handler, _ = scripted(page([{"id": "1"}], f"{INTENTS}?s=2"), httpx.Response(504), page([{"id": "2"}]))
    client, sleeps, _ = make_client(handler)
    assert [p.items for p in read_all(client)] == [[{"id": "1"}], [{"id": "2"}]]
    assert len(sleeps) == 1


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpx.ConnectError("refused"), ErrorCode.GRAPH_NETWORK),
        (httpx.RemoteProtocolError("peer closed"), ErrorCode.GRAPH_NETWORK),
        (httpx.ReadTimeout("slow"), ErrorCode.GRAPH_TIMEOUT),
        (httpx.ConnectTimeout("slow"), ErrorCode.GRAPH_TIMEOUT),
    ],
)
def test_transport_errors_retried_then_mapped(exc: Exception, code: ErrorCode) -> None:
    handler, seen = scripted(exc, page([{"id": "1"}]))
    client, sleeps, _ = make_client(handler)
    assert len(read_all(client)) == 1 and len(sleeps) == 1
    handler, seen = scripted(*([exc] * 4))
    client, _, _ = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == code and info.value.retryable and len(seen) == 4


@pytest.mark.parametrize(
    ("response", "code"),
    [
        (graph_error(403, "Forbidden", "Application is not authorized"), ErrorCode.GRAPH_FORBIDDEN),
        (graph_error(404, "ResourceNotFound", "nope"), ErrorCode.GRAPH_NOT_FOUND),
        (graph_error(400, "BadRequest", "bad $filter"), ErrorCode.GRAPH_BAD_REQUEST),
        (
            graph_error(
                400, "BadRequest", json.dumps({"Message": "Request not applicable to target tenant."})
            ),
            ErrorCode.GRAPH_TENANT_NOT_LICENSED,
        ),
    ],
)
def test_non_retryable_answers_fail_fast(response: httpx.Response, code: ErrorCode) -> None:
    handler, seen = scripted(response)
    client, sleeps, _ = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == code and not info.value.retryable
    assert len(seen) == 1 and sleeps == []


def test_401_refreshes_the_token_once() -> None:
    handler, seen = scripted(graph_error(401, "InvalidAuthenticationToken", "expired"), page([{"id": "1"}]))
    client, sleeps, tokens = make_client(handler)
    assert len(read_all(client)) == 1
    assert [r.headers["Authorization"] for r in seen] == ["Bearer tok-1", "Bearer tok-2"]
    assert ("tenant-a", True) in tokens.calls and sleeps == []


def test_401_twice_is_graph_unauthorized() -> None:
    rejected = graph_error(401, "InvalidAuthenticationToken", "bad audience")
    handler, seen = scripted(rejected, rejected)
    client, _, tokens = make_client(handler)
    with pytest.raises(GraphError) as info:
        read_all(client)
    assert info.value.code == ErrorCode.GRAPH_UNAUTHORIZED and len(seen) == 2
    assert sum(1 for _, forced in tokens.calls if forced) == 1


def test_per_tenant_concurrency_is_bounded() -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        time.sleep(0.02)
        with lock:
            state["now"] -= 1
        return page([{"id": request.url.path}])

    client, _, _ = make_client(handler, per_tenant_concurrency=2)
    stats = RequestStats()
    threads = [
        threading.Thread(target=lambda k=key: list(client.iter_pages("tenant-a", k, stats=stats)))
        for key in list(REGISTRY)[:8]
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert state["max"] == 2
    assert stats.requests == 8 and stats.pages == 8


def test_request_stats_are_plain_counters() -> None:
    stats = RequestStats()
    stats.add(requests=2, throttled=1, retries=1, pages=1, wait_s=0.25)
    stats.requests += 1  # direct mutation stays possible for simple callers
    assert asdict(stats) == {"requests": 3, "throttled": 1, "retries": 1, "pages": 1, "wait_s": 0.25}
    assert stats.snapshot() == asdict(stats)


def test_msal_form_fields_encode_bytes_like_requests() -> None:
    assert _form({"client_assertion": b"ey.J.x", "scope": "s/.default"}) == {
        "client_assertion": "ey.J.x",
        "scope": "s/.default",
    }
    assert _form(None) is None


def test_client_is_a_context_manager() -> None:
    handler, _ = scripted(page([]))
    client, _, _ = make_client(handler)
    with client as same:
        assert same is client
        assert read_all(client)[0].items == []
    with pytest.raises(RuntimeError):
        read_all(client)
