"""Pure paging rules: the first URL of a collection, what a valid page is, and when paging loops.

Kept apart from the HTTP code so each rule is tested without a server. A page that cannot be trusted
raises instead of being skipped: a partial read must never look like a complete one.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

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


# Pages above this size are decoded item by item (ijson, C backend) instead of by json.loads, which
# first turns the whole body into one str: with a single emoji or CJK name in a 1,000-app page that str
# takes 4 bytes per character (~15 MB) before any object exists. Streaming keeps decoding to ~1x the body.
STREAM_DECODE_BYTES = 1_000_000


def parse_page(body: bytes, url: str) -> tuple[list[Any], str | None]:
    """`(items, next_link)` from a collection page, or GRAPH_INVALID_RESPONSE.

    A body that is not JSON (e.g. truncated), not an object, without a `value` list, or with a
    nextLink that is not a string is rejected: its items cannot be trusted to be the whole page.
    """
    if len(body) > STREAM_DECODE_BYTES:
        return _parse_page_streaming(body, url)
    try:
        doc = json.loads(body, object_hook=_cut_long_strings)
    except ValueError:  # UnicodeDecodeError is a ValueError too
        raise _invalid(url, f"a body that is not valid JSON ({len(body)} bytes; truncated?)") from None
    if not isinstance(doc, dict):
        raise _invalid(url, f"a JSON {type(doc).__name__} instead of an object")
    return _checked(doc.get("value"), doc.get(NEXT_LINK), url)


def _checked(items: Any, next_link: Any, url: str) -> tuple[list[Any], str | None]:
    if not isinstance(items, list):
        raise _invalid(url, "an object without a 'value' list")
    if next_link is None or next_link == "":
        return items, None
    if not isinstance(next_link, str):
        raise _invalid(url, f"a non-string {NEXT_LINK}")
    return items, next_link


def _parse_page_streaming(body: bytes, url: str) -> tuple[list[Any], str | None]:
    """parse_page for large bodies: the same answers, built one item at a time."""
    import ijson

    try:
        events = ijson.parse(io.BytesIO(body))
        first = next(events, None)
        if first is None or first[1] != "start_map":
            kind = "empty body" if first is None else first[1]
            raise _invalid(url, f"JSON that is not an object ({kind})")
        has_value = False
        for prefix, event, _ in events:  # only until "value" opens: Graph puts it first or second
            if prefix == "value":
                if event != "start_array":
                    raise _invalid(url, "an object without a 'value' list")
                has_value = True
                break
            if prefix == "" and event == "end_map":
                break
        if not has_value:
            raise _invalid(url, "an object without a 'value' list")
        items = [_cut(item) if not isinstance(item, dict) else _cut_long_strings(item)
                 for item in ijson.items(io.BytesIO(body), "value.item", use_float=True)]
        links = list(ijson.items(io.BytesIO(body), NEXT_LINK, use_float=True))
    except ijson.JSONError:
        raise _invalid(url, f"a body that is not valid JSON ({len(body)} bytes; truncated?)") from None
    return _checked(items, links[0] if links else None, url)


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_STRING_CHARS:
        return value[:MAX_STRING_CHARS]
    if isinstance(value, list) and value and isinstance(value[0], str):
        return [_cut(v) for v in value]
    return value


def _cut_long_strings(obj: dict[str, Any]) -> dict[str, Any]:
    """json object_hook: every string value longer than MAX_STRING_CHARS is cut to that length."""
    for key, value in obj.items():
        if isinstance(value, str | list):
            obj[key] = _cut(value)
        elif isinstance(value, dict):  # ijson builds nested objects without calling a hook
            _cut_long_strings(value)
    return obj


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
