"""Run workers keep the garbage collector off the heap Dagster imported (tenantatlas_pipelines/startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import gc
import dagster
before = gc.get_freeze_count()
import tenantatlas_pipelines.definitions
from tenantatlas_pipelines.startup import freeze_import_heap
print(before, gc.get_freeze_count(), freeze_import_heap())
"""


def test_loading_the_definitions_freezes_the_import_heap_once() -> None:
    env = {**os.environ, "TENANTATLAS_DAGSTER_READ_SELECTIONS": "0"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    before, frozen, again = int(out[0]), int(out[1]), out[2]
    assert before == 0
    assert frozen > 100_000, "Dagster's import-time objects are in the permanent generation"
    assert again == "False", "a second call (a code-location reload) freezes nothing more"
