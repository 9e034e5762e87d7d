"""Run workers keep the garbage collector off the heap Dagster imported (tenantatlas_pipelines/startup.py)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import gc
import dagster
before = gc.get_freeze_count()
tracked = len(gc.get_objects())
import tenantatlas_pipelines.definitions
from tenantatlas_pipelines.startup import freeze_import_heap
print(before, tracked, gc.get_freeze_count(), len(gc.get_objects()), freeze_import_heap())
"""


def test_loading_the_definitions_freezes_dagsters_heap_once_before_our_imports() -> None:
    env = {**os.environ, "TENANTATLAS_DAGSTER_READ_SELECTIONS": "0"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    before, tracked, frozen, unfrozen_after = (int(v) for v in out[:4])
    again = out[4]
    assert before == 0
    # Frozen first thing: what Dagster's import left (~110,000 objects here), not what ours added later...
    assert tracked * 0.9 <= frozen <= tracked * 1.05, (tracked, frozen)
    # ...whose objects stay collectable (a freeze at the end would leave almost nothing tracked).
    assert unfrozen_after > 5_000, unfrozen_after
    assert again == "False", "a second call (a code-location reload) freezes nothing more"
