"""The sentence behind each error code, read from docs/error-codes.md (the one table that defines them).

The Runs pages show a code together with what it means and what to do, so a technician does not have to
look it up. The table is parsed, not copied, so the page and the docs cannot disagree. An installed
image points TENANTATLAS_DOCS_DIR at its copy of docs/ (deploy/Dockerfile).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..config import PROJECT_ROOT

_ROW = re.compile(r"^\|\s*`([a-z0-9_]+)`\s*\|([^|]*)\|([^|]*)\|([^|]*)\|\s*$")


@dataclass(frozen=True)
class ErrorDoc:
    code: str
    area: str
    meaning: str
    action: str


def docs_dir() -> Path:
    override = os.environ.get("TENANTATLAS_DOCS_DIR", "").strip()
    return Path(override) if override else PROJECT_ROOT / "docs"


def parse(text: str) -> dict[str, ErrorDoc]:
    """code -> its row, from the markdown table `| `code` | area | meaning | what to do |`."""
    docs: dict[str, ErrorDoc] = {}
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if m:
            code, area, meaning, action = (g.strip() for g in m.groups())
            docs[code] = ErrorDoc(code, area, meaning.replace("`", ""), action.replace("`", ""))
    return docs


@lru_cache(maxsize=1)
def error_docs() -> dict[str, ErrorDoc]:
    """The parsed table; empty when the docs are not installed (pages then show the code alone)."""
    path = docs_dir() / "error-codes.md"
    try:
        return parse(path.read_text(encoding="utf-8"))
    except OSError:
        return {}
