"""The failure sentences come from docs/error-codes.md, the one place they are written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenantatlas_pipelines import error_docs
from tenantatlas_pipelines.errors import ErrorCode


def test_every_code_has_its_sentence_from_the_doc() -> None:
    docs = error_docs.parse(error_docs.doc_path().read_text())
    for code in ErrorCode:
        assert docs[code.value].meaning, code
        assert docs[code.value].meaning in error_docs.explain(code.value)
    licensed = error_docs.explain("graph_tenant_not_licensed")
    assert licensed.startswith("graph_tenant_not_licensed: 400 ")
    assert licensed.endswith("What to do: Remove Intune types from the tenant's selection or license it.")


def test_a_code_added_to_the_doc_plugs_in_and_markdown_becomes_plain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = tmp_path / "codes.md"
    doc.write_text(
        "| code | area | meaning | what to do |\n| --- | --- | --- | --- |\n"
        "| `new_code` | x | Something `odd` happened. | See [onboarding](onboarding.md). |\n"
        "| `quiet_code` | x | Counted only. | None. |\n"
    )
    monkeypatch.setenv(error_docs.DOC_ENV, str(doc))
    assert error_docs.explain("new_code") == "new_code: Something odd happened. What to do: See onboarding."
    assert error_docs.explain("quiet_code") == "quiet_code: Counted only."
    monkeypatch.setenv(error_docs.DOC_ENV, str(tmp_path / "absent.md"))
    assert error_docs.explain("new_code") == "new_code (see docs/error-codes.md)"
