"""The sentences of docs/error-codes.md (what happened, what to do) per error code, read at run time.

Why parse the doc: it is the one place a code's explanation is written. A failure in the Dagster UI
then says the same words an operator finds in the docs, and a code someone adds to the table is
explained everywhere without a second list to keep in step (tests/test_error_docs.py checks that every
code of the enum has both sentences). The image carries the file (deploy/Dockerfile) and points
TENANTATLAS_ERROR_CODES_DOC at it, like the SQL migrations.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .config import PROJECT_ROOT

DOC_ENV = "TENANTATLAS_ERROR_CODES_DOC"
_ROW = re.compile(r"^\| `(?P<code>[a-z_]+)` \| (?P<area>[^|]*) \| (?P<meaning>.*) \| (?P<todo>.*) \|\s*$")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


@dataclass(frozen=True)
class CodeDoc:
    """One row of the table: the code, what it means, and what to do."""

    code: str
    meaning: str
    what_to_do: str

    def sentence(self) -> str:
        """Both sentences as one plain line: `<meaning> What to do: <action>`."""
        todo = self.what_to_do.rstrip(".")
        return f"{self.meaning} What to do: {todo}." if todo and todo != "None" else self.meaning


def doc_path() -> Path:
    override = os.environ.get(DOC_ENV)
    return Path(override) if override else PROJECT_ROOT / "docs" / "error-codes.md"


def _plain(cell: str) -> str:
    """Markdown cell -> plain text (links keep their text; backticks and escaped pipes go)."""
    return _LINK.sub(r"\1", cell).replace("\\|", "|").replace("`", "").strip()


def parse(text: str) -> dict[str, CodeDoc]:
    """Every `| code | area | meaning | what to do |` row of the doc, by code."""
    docs: dict[str, CodeDoc] = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            docs[m["code"]] = CodeDoc(m["code"], _plain(m["meaning"]), _plain(m["todo"]))
    return docs


@lru_cache(maxsize=4)
def load(path: Path) -> dict[str, CodeDoc]:
    try:
        return parse(path.read_text(encoding="utf-8"))
    except OSError:
        return {}


def explain(code: str) -> str:
    """`code: <meaning> What to do: <action>`; just the code and a pointer when the doc is not there."""
    doc = load(doc_path()).get(code)
    return f"{code}: {doc.sentence()}" if doc else f"{code} (see docs/error-codes.md)"
