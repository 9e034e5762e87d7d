"""Pure paging rules: the first URL of a collection, what a valid page is, and when paging loops.

Kept apart from the HTTP code so each rule is tested without a server. A page that cannot be trusted
raises instead of being skipped: a partial read must never look like a complete one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import ijson

from ..errors import ErrorCode
from ..policy_types import PolicyType
from .errors import GraphError, safe_url

NEXT_LINK = "@odata.nextLink"
# List payloads carry app icons and script bodies as strings of tens of kilobytes; nothing downstream
# keeps more than ~1,000 characters of any string (normalize.py), so longer ones are cut while the page
# is decoded. Each blob is then freed as soon as its object is built, and a page of 1,000 apps costs a
# few MB instead of tens. Must stay above every length limit in normalize.py (a test checks).
MAX_STRING_CHARS = 2048
# Empty pages with a nextLink are legal; an endless run of them is a loop that changes its skiptoken.
MAX_CONSECUTIVE_EMPTY_PAGES = 100


def first_url(graph_url: str, policy_type: PolicyType) -> str:
    """`{graph_url}/{api_version}/{path}` plus the type's default query, `$` kept literal."""
    url = f"{graph_url.rstrip('/')}/{policy_type.api_version}/{policy_type.path.strip('/')}"
    if policy_type.query:
        url += "?" + urlencode(dict(policy_type.query), quote_via=quote, safe="$,'()")
    return url


def _invalid(url: str, why: str) -> GraphError:
    return GraphError(ErrorCode.GRAPH_INVALID_RESPONSE, f"GET {safe_url(url)} returned {why}")


def parse_page(body: bytes, url: str) -> tuple[list[Any], str | None]:
    """`(items, next_link)` from a whole collection page held in memory; see decode_page."""
    return decode_page((body,), url)


def decode_page(
    chunks: Iterable[bytes], url: str, max_string_chars: int | None = MAX_STRING_CHARS
) -> tuple[list[Any], str | None]:
    """`(items, next_link)` from a collection page arriving as byte chunks, or GRAPH_INVALID_RESPONSE.

    The chunks are decoded as they arrive (ijson's C parser, yajl, pulls them one at a time; their
    boundaries do not matter), so the body is never held whole, and a long string that is a member of
    an object (an icon, a script) is cut to MAX_STRING_CHARS the moment its object receives it; strings
    inside lists are cut when the page is complete. Every other string (never a key, nor the nextLink)
    is kept, and numbers come out as json.loads gives them (int, or float).

    A body that is not JSON (e.g. truncated), not an object, without a `value` list, or with a
    nextLink that is not a string is rejected: its items cannot be trusted to be the whole page. An
    exception raised by the chunk iterator (a transport error) propagates unchanged, and nothing of
    the page is returned. `max_string_chars=None` keeps every string whole (snapshots keep full content).
    """
    reader = _ChunkReader(chunks, url)
    lists: list[list[Any]] = []
    outer = getattr(_decoding, "lists", None)  # None unless a chunk source itself decodes a page
    outer_limit = getattr(_decoding, "limit", MAX_STRING_CHARS)
    _decoding.lists = lists
    _decoding.limit = max_string_chars
    items: Any = None
    next_link: Any = None
    try:
        # use_float=False: with it, yajl refuses integers outside int64 that json.loads accepts; the
        # numbers with a fraction or exponent come as Decimal and are made floats where they are stored.
        for key, value in ijson.kvitems(reader, "", map_type=_Object):
            if key == "value":
                items = value
            elif key == NEXT_LINK:
                next_link = value
    except ijson.JSONError:
        raise _invalid(url, f"a body that is not valid JSON ({reader.size} bytes; truncated?)") from None
    else:
        if isinstance(items, list):
            lists.append(items)
        _finish_lists(lists)
    finally:
        _decoding.lists = outer
        _decoding.limit = outer_limit
    return _checked(items, next_link, url)


def _finish_lists(lists: list[list[Any]]) -> None:
    """What _Object does for members, done for list elements once the lists are complete: long strings
    cut, Decimals made floats; lists nested in these lists included (iteratively: depth is unbounded)."""
    limit = getattr(_decoding, "limit", MAX_STRING_CHARS)
    while lists:
        values = lists.pop()
        for i, v in enumerate(values):
            cls = v.__class__
            if cls is str:
                if limit is not None and len(v) > limit:
                    values[i] = v[:limit]
            elif cls is Decimal:
                values[i] = float(v)
            elif cls is list:
                lists.append(v)


def _checked(items: Any, next_link: Any, url: str) -> tuple[list[Any], str | None]:
    if not isinstance(items, list):
        raise _invalid(url, "an object without a 'value' list")
    if next_link is None or next_link == "":
        return items, None
    if not isinstance(next_link, str):
        raise _invalid(url, f"a non-string {NEXT_LINK}")
    return items, next_link


# Per-thread state of the decode running in this thread (threads decode pages concurrently).
_decoding = threading.local()


class _Object(dict[str, Any]):
    """The dict every JSON object of a page is built as (ijson's map_type).

    ijson stores each member as soon as it is parsed, so a long string is cut here and the full one is
    freed at once: an app icon of 30 KB never outlives its own parsing. A list is stored while still
    empty; it is noted, and its elements are finished when the page is complete (_finish_lists).
    Outside a decode in this thread it behaves exactly like a plain dict (nothing is cut or converted).
    """

    __slots__ = ()

    def __setitem__(self, key: str, value: Any, _set: Any = dict.__setitem__) -> None:
        cls = value.__class__
        if cls is str:
            if getattr(_decoding, "lists", None) is not None:
                limit = getattr(_decoding, "limit", MAX_STRING_CHARS)
                if limit is not None and len(value) > limit:
                    value = value[:limit]
        elif cls is list or cls is Decimal:
            lists = getattr(_decoding, "lists", None)
            if lists is not None:
                if cls is list:
                    lists.append(value)
                else:
                    value = float(value)
        _set(self, key, value)


_JSON_WHITESPACE = b" \t\n\r"
_UTF8_BOM = b"\xef\xbb\xbf"


class _ChunkReader:
    """A file-like view of byte chunks for ijson's C reader; read() returns the next chunk, whatever
    its size. Until the first significant byte it also checks that the body is a JSON object (and
    drops a UTF-8 BOM, which json.loads accepts and yajl does not), so an HTML error page is refused
    at its first chunk."""

    def __init__(self, chunks: Iterable[bytes], url: str) -> None:
        self._chunks = iter(chunks)
        self._url = url
        self._head: bytes | None = b""  # leading bytes while the first significant one is unknown
        self._bom_checked = False
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        for chunk in self._chunks:
            self.size += len(chunk)
            if self._head is not None:
                chunk = self._sniff(chunk)
            if chunk:
                return chunk
        return b""

    def _sniff(self, chunk: bytes) -> bytes:
        assert self._head is not None
        head = self._head + chunk
        if not self._bom_checked:
            if len(head) < len(_UTF8_BOM) and _UTF8_BOM.startswith(head):
                self._head = head  # maybe the start of a BOM: wait for more
                return b""
            self._bom_checked = True
            if head.startswith(_UTF8_BOM):
                head = head[len(_UTF8_BOM):]
        head = head.lstrip(_JSON_WHITESPACE)
        if not head:
            self._head = b""  # only whitespace so far: dropping it changes nothing
            return b""
        if head[:1] != b"{":
            raise _invalid(self._url, f"a body that is not a JSON object (it starts with {head[:1]!r})")
        self._head = None
        return head


def check_next_link(next_link: str, graph_url: str, current_url: str) -> None:
    """Refuse nextLinks that leave Graph's origin: we would send the tenant's bearer token there."""
    link, base = urlsplit(next_link), urlsplit(graph_url)
    if (link.scheme, link.netloc.lower()) != (base.scheme, base.netloc.lower()):
        raise _invalid(
            current_url, f"a {NEXT_LINK} to another origin ({link.scheme}://{link.hostname}); not followed"
        )


def _page_ids(items: Sequence[Any]) -> tuple[Any, ...] | None:
    ids = tuple(item.get("id") if isinstance(item, dict) else None for item in items)
    return ids if any(i is not None for i in ids) else None


@dataclass
class LoopGuard:
    """Detects nextLink loops in ONE collection read: a link seen twice, a page whose ids equal the
    previous page's, or an absurd run of empty pages. Remembers links only (short strings)."""

    seen_links: set[str] = field(default_factory=set)
    previous_ids: tuple[Any, ...] | None = None
    empty_run: int = 0

    def check_page(self, url: str, items: Sequence[Any]) -> None:
        ids = _page_ids(items)
        if ids is not None and ids == self.previous_ids:
            raise GraphError(
                ErrorCode.GRAPH_PAGING_LOOP,
                f"GET {safe_url(url)} returned the same {len(items)} items as the previous page; "
                "the nextLink loops, stopping instead of reading forever",
            )
        self.previous_ids = ids
        self.empty_run = self.empty_run + 1 if not items else 0
        if self.empty_run > MAX_CONSECUTIVE_EMPTY_PAGES:
            raise GraphError(
                ErrorCode.GRAPH_PAGING_LOOP,
                f"GET {safe_url(url)}: {self.empty_run} empty pages in a row; treating as a paging loop",
            )

    def check_next(self, url: str, next_link: str) -> None:
        if next_link == url or next_link in self.seen_links:
            raise GraphError(
                ErrorCode.GRAPH_PAGING_LOOP,
                f"GET {safe_url(url)} returned a nextLink already followed in this read",
            )
        self.seen_links.add(url)
        self.seen_links.add(next_link)
