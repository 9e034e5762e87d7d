"""Reading a collection one page ahead (`GraphClient.iter_pages(read_ahead=True)`, what snapshots use).

The next page is requested off the nextLink found at the end of the current body before that body is
decoded. It must change nothing but the timing: the same pages, the same requests (one more only when
a body's tail lies about its nextLink), the same errors at the same place, never a page lost or taken
from a link the decoded page did not give.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from tenantatlas_pipelines.errors import ErrorCode
from tenantatlas_pipelines.graph import read_ahead as read_ahead_module
from tenantatlas_pipelines.graph.client import GraphClient, Page, RequestStats
from tenantatlas_pipelines.graph.errors import GraphError
from tenantatlas_pipelines.graph.paging import NEXT_LINK, tail_next_link
from tenantatlas_pipelines.graph.read_ahead import READ_AHEAD_DEPTH
from tests.test_graph_client import INTENTS, graph_error, make_client, page

LINK2 = f"{INTENTS}?$skiptoken=two"
LINK3 = f"{INTENTS}?$skiptoken=three"


def by_url(answers: dict[str, httpx.Response | bytes]) -> tuple[Any, list[str]]:
    """A transport handler answering by URL (requests may come from the read-ahead thread)."""
    seen: list[str] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append(str(request.url))
        answer = answers[str(request.url)]
        return httpx.Response(200, content=answer) if isinstance(answer, bytes) else answer

    return handler, seen


def read_ahead(client: GraphClient, stats: RequestStats | None = None) -> list[Page]:
    return list(client.iter_pages("tenant-a", "endpointSecurityIntent", stats=stats, read_ahead=True,
                                  full_strings=True))


def read_until_error(client: GraphClient) -> tuple[list[Page], GraphError]:
    """The pages a read-ahead read yields before it fails, and its error."""
    got: list[Page] = []
    with pytest.raises(GraphError) as info:
        for p in client.iter_pages("tenant-a", "endpointSecurityIntent", read_ahead=True, full_strings=True):
            got.append(p)
    return got, info.value


# -- the guess ------------------------------------------------------------------------------------------
def test_tail_next_link_reads_the_last_member_only() -> None:
    assert tail_next_link(json.dumps({"value": [], NEXT_LINK: LINK2}).encode()) == LINK2
    assert tail_next_link(b'{"value": [] ,\n "@odata.nextLink" :\t"https:\\/\\/g\\u0061" }\r\n') == "https://ga"
    assert tail_next_link(json.dumps({NEXT_LINK: LINK2, "value": []}).encode()) is None  # not last: no guess
    assert tail_next_link(json.dumps({"value": [{NEXT_LINK: LINK2}]}).encode()) is None  # nested
    assert tail_next_link(json.dumps({"value": [], "x": {NEXT_LINK: LINK2}}).encode()) is None
    assert tail_next_link(b'{"value": [], "@odata.nextLink": ""}') is None
    assert tail_next_link(b'{"value": [], "@odata.nextLink": "\\ud800"}') == "\ud800"  # judged later
    assert tail_next_link(b'{"value": [], "@odata.nextLink": 5}') is None
    assert tail_next_link(b'{"value": []}') is None and tail_next_link(b"") is None


# -- the read over HTTP ---------------------------------------------------------------------------------
def test_the_same_pages_requests_and_counts_as_without_read_ahead() -> None:
    answers = {INTENTS: page([{"id": "1"}, {"id": "2"}], LINK2), LINK2: page([], LINK3),
               LINK3: page([{"id": "3"}, "not-a-dict"])}
    handler, seen = by_url(answers)
    client, _, _ = make_client(handler)
    stats = RequestStats()
    pages = read_ahead(client, stats)
    assert [p.items for p in pages] == [[{"id": "1"}, {"id": "2"}], [], [{"id": "3"}, "not-a-dict"]]
    assert [p.url for p in pages] == [INTENTS, LINK2, LINK3] and [p.number for p in pages] == [1, 2, 3]
    assert seen == [INTENTS, LINK2, LINK3]
    assert stats.snapshot() == {"requests": 3, "throttled": 0, "retries": 0, "pages": 3, "wait_s": 0}


def test_the_next_page_is_requested_before_the_current_one_is_consumed() -> None:
    asked = threading.Event()
    answers: dict[str, httpx.Response | bytes] = {INTENTS: page([{"id": "1"}], LINK2)}

    def handler(request: httpx.Request) -> httpx.Response:
        if str(request.url) == LINK2:
            asked.set()
            return page([{"id": "2"}])
        return answers[str(request.url)]

    client, _, _ = make_client(handler)
    pages = client.iter_pages("tenant-a", "endpointSecurityIntent", read_ahead=True)
    first = next(pages)
    assert first.items == [{"id": "1"}]
    assert asked.wait(10)  # page 2 was asked for while page 1 was still ours to store
    assert [p.items for p in pages] == [[{"id": "2"}]]


def test_a_tail_that_lies_costs_one_request_and_never_a_page() -> None:
    # The key is `x"@odata.nextLink` (an escaped quote): the tail looks like a nextLink, the page has none.
    liar = b'{"value": [{"id": "1"}], "x\\"@odata.nextLink": "' + LINK2.encode() + b'"}'
    handler, seen = by_url({INTENTS: liar, LINK2: page([{"id": "not-this-collection"}])})
    client, _, _ = make_client(handler)
    stats = RequestStats()
    pages = read_ahead(client, stats)
    assert [p.items for p in pages] == [[{"id": "1"}]] and stats.pages == 1
    assert seen[0] == INTENTS and seen[1:] in ([], [LINK2])  # the guess: sent, or cancelled at the end


def test_a_guess_whose_tail_differs_is_dropped_and_the_decoded_link_is_read() -> None:
    # Two nextLinks in one body: the decoder keeps the last one; the guess is made to differ by a
    # first member the tail regex cannot see (the true link comes from the decoder, the guess from
    # the escaped-key decoy at the end).
    body = (b'{"value": [{"id": "1"}], "@odata.nextLink": "' + LINK3.encode() + b'", "x\\"@odata.nextLink": "'
            + LINK2.encode() + b'"}')
    handler, seen = by_url({INTENTS: body, LINK2: page([{"id": "wrong"}]), LINK3: page([{"id": "3"}])})
    client, _, _ = make_client(handler)
    pages = read_ahead(client)
    assert [p.items for p in pages] == [[{"id": "1"}], [{"id": "3"}]]
    assert [p.url for p in pages] == [INTENTS, LINK3]
    # The wrong guess is dropped: cancelled before it was sent, or answered, waited for and dropped.
    assert seen in ([INTENTS, LINK2, LINK3], [INTENTS, LINK3])


def test_a_guess_to_another_origin_is_never_requested() -> None:
    evil = "https://evil.example/beta/x?$skiptoken=1"
    handler, seen = by_url({INTENTS: page([{"id": "1"}], evil)})
    client, _, _ = make_client(handler)
    got, error = read_until_error(client)
    assert error.code == ErrorCode.GRAPH_INVALID_RESPONSE
    assert [p.items for p in got] == [[{"id": "1"}]] and seen == [INTENTS]


def test_a_bad_page_fails_the_read_where_it_is_and_keeps_the_pages_before() -> None:
    broken = b'{"value": [{"id": "2"}, "@odata.nextLink": "' + LINK3.encode() + b'"}'  # not JSON, tail fine
    handler, seen = by_url({INTENTS: page([{"id": "1"}], LINK2), LINK2: broken, LINK3: page([{"id": "3"}])})
    client, _, _ = make_client(handler)
    got, error = read_until_error(client)
    assert error.code == ErrorCode.GRAPH_INVALID_RESPONSE and "not valid JSON" in error.message
    assert [p.items for p in got] == [[{"id": "1"}]]
    assert seen[:2] == [INTENTS, LINK2]  # LINK3 may have been guessed; its page is never yielded


def test_a_failed_read_ahead_request_fails_at_its_own_page() -> None:
    handler, _ = by_url({INTENTS: page([{"id": "1"}], LINK2),
                         LINK2: graph_error(403, "Forbidden", "Application is not authorized")})
    client, _, _ = make_client(handler)
    got, error = read_until_error(client)
    assert error.code == ErrorCode.GRAPH_FORBIDDEN
    assert [p.items for p in got] == [[{"id": "1"}]]


def test_a_next_link_loop_is_still_detected() -> None:
    handler, seen = by_url({INTENTS: page([{"id": "1"}], LINK2), LINK2: page([{"id": "2"}], LINK2)})
    client, _, _ = make_client(handler)
    got, error = read_until_error(client)
    assert error.code == ErrorCode.GRAPH_PAGING_LOOP and len(got) == 2
    assert seen == [INTENTS, LINK2]  # a link already followed is never guessed


def test_a_body_past_the_hold_limit_is_decoded_as_it_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(read_ahead_module, "READ_AHEAD_MAX_BYTES", 64)
    big = [{"id": str(i), "text": "y" * 50} for i in range(20)]
    handler, seen = by_url({INTENTS: page(big, LINK2), LINK2: page([{"id": "last"}])})
    client, _, _ = make_client(handler)
    pages = read_ahead(client)
    assert [p.items for p in pages] == [big, [{"id": "last"}]] and seen == [INTENTS, LINK2]


def test_closing_the_read_early_leaves_no_thread_behind() -> None:
    handler, _ = by_url({INTENTS: page([{"id": "1"}], LINK2), LINK2: page([{"id": "2"}], LINK3),
                         LINK3: page([{"id": "3"}])})
    client, _, _ = make_client(handler)
    pages = client.iter_pages("tenant-a", "endpointSecurityIntent", read_ahead=True)
    assert next(pages).items == [{"id": "1"}]
    pages.close()
    deadline = time.monotonic() + 10
    while any(t.name.startswith("graph-read-ahead") for t in threading.enumerate()):
        assert time.monotonic() < deadline, "the read-ahead thread outlived its read"
        time.sleep(0.02)


def test_requests_run_at_most_depth_pages_ahead_of_the_reader() -> None:
    links = [INTENTS] + [f"{INTENTS}?$skiptoken={n}" for n in range(1, 10)]
    following = [*links[1:], None]
    answers: dict[str, httpx.Response | bytes] = {
        link: page([{"id": str(n)}], following[n]) for n, link in enumerate(links)
    }
    handler, seen = by_url(answers)
    client, _, _ = make_client(handler)
    stats = RequestStats()
    pages = client.iter_pages("tenant-a", "endpointSecurityIntent", stats=stats, read_ahead=True)
    assert next(pages).items == [{"id": "0"}]
    deadline = time.monotonic() + 10
    while len(seen) < 1 + READ_AHEAD_DEPTH and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # room for one request too many, if the bound did not hold
    assert seen == links[:1 + READ_AHEAD_DEPTH]  # the reader holds page 1: two more bodies, no more
    rest = list(pages)
    assert [p.items for p in rest] == [[{"id": str(n)}] for n in range(1, 10)]
    assert seen == links and stats.requests == 10 and stats.pages == 10
