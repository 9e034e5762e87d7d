"""The run engine: what every kind of run over one (tenant, selection) shares.

Sync runs (sync.py) and snapshot runs are thin callers. The engine does the rest, identically for every
kind: tenant (enabled) and selection lookup; one PostgreSQL advisory lock per (tenant, selection_hash)
in the kind's own namespace (a sync and a snapshot of one pair may run at once, two runs of one kind may
not) — not owned: a `skipped` row with `lock_held`; runs of the pair left `running` by a dead process
are marked `run_abandoned`; the token first (without one every type fails with the auth code); one worker
per policy type on a bounded thread pool, each type's failure recorded on that type with its code;
finalisation into succeeded / partial / failed with the union of the codes.

How a new run kind plugs in
---------------------------
1. Tables (a migration): a runs table and a per-type table of the shape store/run_ledger.py describes
   (the inventory_sync_runs / inventory_sync_run_types columns; your own counters, which must include
   requests, throttled, retries), with row-level security like the inventory tables.
2. A ledger: one `RunLedger` naming them, with frozen dataclasses for a run row and a type row.
3. A worker: `observe_type(ctx: TypeContext) -> None` reads `ctx.policy_type` through `ctx.graph`
   (passing `stats=ctx.stats`), writes each page with `ctx.scope` (tenant-bound connection; add the page's
   counts to your per-type row in the same transaction) and calls `ctx.commit()` once per page (never
   `conn.commit()`: the engine's checks live there). Raise TenantAtlasError to fail the type with a code;
   add item-level codes to `ctx.item_codes`.
4. A `RunKind` and a public function calling `execute_run`; add the kind to `RUN_KINDS` in
   defs/sensors.py so the registry sensor's sweep (`sweep_dead_runs`) finalises its dead `running` rows.

    from tenantatlas_pipelines.runs import RunKind, TypeContext, execute_run
    from tenantatlas_pipelines.store.run_ledger import RunLedger

    LEDGER = RunLedger(kind="snapshot", runs_table="snapshot_runs", types_table="snapshot_run_types",
                       run_fk="snapshot_run_id", counters=("objects", "new_versions", "requests",
                       "throttled", "retries"), run_row=SnapshotRun, type_row=SnapshotTypeOutcome)

    def _snapshot_type(ctx: TypeContext) -> None:
        for page in ctx.graph.iter_pages(ctx.scope.tenant_id, ctx.policy_type, stats=ctx.stats):
            store_versions(ctx.scope, ctx.run_id, ctx.policy_type, page.items)  # + per-type counts
            ctx.commit()

    SNAPSHOT = RunKind(name="snapshot", lock_namespace="snapshot", ledger=LEDGER,
                       observe_type=_snapshot_type)

    def run_snapshot(db, graph, tenant_key, selection_name, **kw) -> SnapshotRun:
        return execute_run(SNAPSHOT, db, graph, tenant_key, selection_name, **kw).run
"""

from .engine import RunKind, RunOutcome, RunResultDict, TypeContext, execute_run, sweep_dead_runs, worker_name

__all__ = [
    "RunKind",
    "RunOutcome",
    "RunResultDict",
    "TypeContext",
    "execute_run",
    "sweep_dead_runs",
    "worker_name",
]
