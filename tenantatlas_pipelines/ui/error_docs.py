"""The sentence behind each error code, for the Runs pages: the one parser of docs/error-codes.md
(`tenantatlas_pipelines.error_docs`, which Dagster's failure descriptions use too), so the UI, the
Dagster UI and the docs cannot disagree. The image points TENANTATLAS_ERROR_CODES_DOC at its copy.
"""

from __future__ import annotations

from ..error_docs import CodeDoc, doc_path, load

__all__ = ["CodeDoc", "error_docs"]


def error_docs() -> dict[str, CodeDoc]:
    """code -> its row; empty when the doc is not installed (pages then show the code alone)."""
    return load(doc_path())
