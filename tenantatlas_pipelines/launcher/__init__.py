"""Launching Dagster runs without paying for a new Python process per run.

Why: every partition is its own Dagster run (that is what keeps the partitions grid truthful and lets the
run queue's per-tenant tag limit mean one sync per tenant). Dagster's DefaultRunLauncher starts each run in
a freshly spawned interpreter that imports Dagster and the code location again: 1-2 CPU seconds a run,
several wall seconds on a loaded 2-core machine, for a sync that itself takes about a second.
`WarmRunLauncher` hands each run to a *zygote* instead: one process that imported everything once and
forks a child per run. The run is still a separate process with its own run worker, event log and
exit; only its start-up is gone. See docs/orchestration.md, "Throughput".
"""
