"""Pure paging rules: the first URL of a collection, what a valid page is, and when paging loops.

Kept apart from the HTTP code so each rule is tested without a server. A page that cannot be trusted
raises instead of being skipped: a partial read must never look like a complete one.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import accumulate
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
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
# The shape limits a page must keep before any byte of it reaches the C decoder (_ShapeLimits). yajl2_c
# crashes the process (SIGSEGV) on an integer literal longer than Python's int-to-str limit (4,300
# digits), and its memory grows with the square of the nesting depth (40,000 nested arrays, an 80 KB
# body, cost 3.9 GB). Graph's list payloads nest about ten levels and send int64 numbers at most, so
# both limits are far above anything real and far below what hurts.
MAX_NESTING_DEPTH = 128
MAX_NUMBER_CHARS = 512
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
    nextLink that is not a string is rejected: its items cannot be trusted to be the whole page. So is
    a body nesting deeper than MAX_NESTING_DEPTH or holding a number literal longer than
    MAX_NUMBER_CHARS: those are refused before the decoder sees them (it crashes or runs out of
    memory on them), so a hostile page fails its read, never the process. An exception raised by the
    chunk iterator (a transport error) propagates unchanged, and nothing of the page is returned.
    `max_string_chars=None` keeps every string whole (snapshots keep full content).
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
        self._limits = _ShapeLimits()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        for chunk in self._chunks:
            self.size += len(chunk)
            if self._head is not None:
                chunk = self._sniff(chunk)
            if chunk:
                why = self._limits.feed(chunk)
                if why is not None:
                    raise _invalid(self._url, f"{why}; refused before decoding")
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


_ESCAPE_PAIR = re.compile(rb"\\.", re.DOTALL)
_LONG_NUMBER = re.compile(rb"[-+.0-9eE]{%d}" % (MAX_NUMBER_CHARS + 1))
_NUMBER_TAIL = re.compile(rb"[-+.0-9eE]*\Z")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = [0] * 256
for _b in b"[{":
    _DEPTH_STEP[_b] = 1
for _b in b"]}":
    _DEPTH_STEP[_b] = -1


class _ShapeLimits:
    """Nesting depth and number-literal length of a JSON body fed chunk by chunk, checked with a few
    C-speed bytes operations per chunk (no per-byte Python loop; a page of 1,000 items costs a few ms).

    Only bytes outside strings count: escape pairs are removed first (an escaped quote ends no
    string), then the quotes split the chunk into string and non-string parts; the state carried
    between chunks is whether a string is open, the depth, a backslash cut off by the chunk boundary,
    and the digits of a number that may continue in the next chunk. It judges shape only: whether
    the bytes are JSON at all is left to the decoder.
    """

    __slots__ = ("_carry", "_in_string", "_tail", "depth")

    def __init__(self) -> None:
        self.depth = 0
        self._in_string = False
        self._carry = b""  # a trailing backslash whose escaped byte is in the next chunk
        self._tail = b""  # number characters at the very end of the previous chunk (outside strings)

    def feed(self, chunk: bytes) -> str | None:
        """None when the body so far keeps the limits, else what it breaks."""
        data = self._carry + chunk
        if b"\\" in data:
            data = _ESCAPE_PAIR.sub(b"", data)
        self._carry = b""
        if data.endswith(b"\\"):
            self._carry, data = b"\\", data[:-1]
        parts = data.split(b'"')
        started_inside = self._in_string
        outside = parts[1::2] if started_inside else parts[0::2]
        if len(parts) % 2 == 0:  # an odd number of quotes: the string state flips
            self._in_string = not self._in_string
        if not started_inside and outside:
            outside[0] = self._tail + outside[0]
        text = b'"'.join(outside)  # a quote ends any number, so joining on it merges none
        if _LONG_NUMBER.search(text):
            return f"a number literal longer than {MAX_NUMBER_CHARS} characters"
        self._tail = b"" if self._in_string else _NUMBER_TAIL.search(text).group()  # type: ignore[union-attr]
        brackets = text.translate(None, _NOT_BRACKETS)
        if brackets:
            depths = list(accumulate(map(_DEPTH_STEP.__getitem__, brackets), initial=self.depth))
            self.depth = depths[-1]
            if max(depths) > MAX_NESTING_DEPTH:
                return f"JSON nested deeper than {MAX_NESTING_DEPTH} levels"
        return None


# The end of a page whose last member is its nextLink: `"@odata.nextLink":"<string>"}` and whitespace.
_WS = rb"[ \t\n\r]*"
_TAIL_NEXT_LINK = re.compile(
    rb'"@odata\.nextLink"' + _WS + b":" + _WS + rb'"((?:[^"\\]|\\.)*)"' + _WS + rb"\}" + _WS + rb"\Z"
)
TAIL_BYTES = 8192  # nextLinks are a few hundred bytes; a longer one is simply not guessed


def tail_next_link(body: bytes) -> str | None:
    """The nextLink a page body seems to end with, read off its last TAIL_BYTES without decoding it, or
    None. Graph writes the nextLink after `value`, so it is known only at the very end of the body; this
    lets a reader request the next page while the body is decoded. A guess, never trusted: the decoded
    page's own nextLink decides (GraphClient._iter_read_ahead)."""
    match = _TAIL_NEXT_LINK.search(body[-TAIL_BYTES:])
    if match is None:
        return None
    try:
        link = json.loads(b'"' + match.group(1) + b'"')
    except ValueError:
        return None
    return link if isinstance(link, str) and link else None


def check_next_link(next_link: str, graph_url: str, current_url: str) -> None:
    """Refuse nextLinks that leave Graph's origin (we would send the tenant's bearer token there) or
    that are no URL the HTTP client can request (`https://[...`, control characters): either fails
    the collection's read with GRAPH_INVALID_RESPONSE instead of escaping as a ValueError."""
    try:
        httpx.URL(next_link)
        link = urlsplit(next_link)
    except (ValueError, httpx.InvalidURL):  # httpx.InvalidURL is no ValueError
        raise _invalid(current_url, f"a {NEXT_LINK} that is not a valid URL; not followed") from None
    base = urlsplit(graph_url)
    if (link.scheme, link.netloc.lower()) != (base.scheme, base.netloc.lower()):
        raise _invalid(
            current_url, f"a {NEXT_LINK} to another origin ({link.scheme}://{link.hostname}); not followed"
        )


def _page_ids(items: Sequence[Any]) -> tuple[str | int | None, ...] | None:
    """The page's ids that can be an object's id (a string or an integer, as normalize.py accepts);
    anything else counts as no id, so comparing two pages never recurses into nested values."""
    ids = tuple(_scalar_id(item.get("id")) if isinstance(item, dict) else None for item in items)
    return ids if any(i is not None for i in ids) else None


def _scalar_id(value: Any) -> str | int | None:
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


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
