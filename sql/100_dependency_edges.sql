-- Dependency graph (issue 15, DESIGN §9): edges derived from each (tenant, selection)'s latest usable
-- snapshot. dependency_partitions: one row per published partition (which snapshot, counts);
-- dependency_edges: the edges, replaced whole per partition in one transaction
-- (store/dependency_edges.py). Derived data: unlike snapshots it is rewritten, never edited in place.

CREATE TABLE IF NOT EXISTS dependency_partitions (
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id),
    selection_hash   text NOT NULL,
    selection_name   text,
    snapshot_run_id  bigint NOT NULL REFERENCES snapshot_runs (id),
    snapshot_status  text NOT NULL,
    objects          integer NOT NULL DEFAULT 0,
    edges            integer NOT NULL DEFAULT 0,
    dangling         integer NOT NULL DEFAULT 0,
    unverified       integer NOT NULL DEFAULT 0,
    unknown_targets  integer NOT NULL DEFAULT 0,
    derived_at       timestamptz NOT NULL DEFAULT now(),
    dagster_run_id   text,
    PRIMARY KEY (tenant_id, selection_hash)
);

CREATE TABLE IF NOT EXISTS dependency_edges (
    tenant_id        text NOT NULL,
    selection_hash   text NOT NULL,
    snapshot_run_id  bigint NOT NULL REFERENCES snapshot_runs (id),
    policy_type      text NOT NULL,
    external_id      text NOT NULL CHECK (external_id <> ''),
    display_name     text,
    relation         text NOT NULL CHECK (relation IN ('include', 'exclude', 'filter', 'scope_tag')),
    target_type      text NOT NULL CHECK (target_type IN ('group', 'all_users', 'all_devices',
                         'all_licensed_users', 'assignment_filter', 'scope_tag')),
    target_id        text NOT NULL CHECK (target_id <> ''),
    target_name      text,
    group_type       text CHECK (group_type IN ('security', 'microsoft365', 'dynamic')),
    filter_mode      text CHECK (filter_mode IN ('include', 'exclude')),
    intent           text,
    via_target_type  text,
    via_target_id    text,
    -- false: Graph answered and the target was not there (dangling, never "deleted");
    -- null: the snapshot could not look (its type failed before its references were resolved).
    resolved         boolean,
    -- The name as looked up (case-insensitive). A stored column, not an index on lower(target_name):
    -- under row-level security a non-leakproof function such as lower() cannot be an index condition,
    -- while `=` on a text column can.
    target_name_key  text GENERATED ALWAYS AS (lower(target_name)) STORED,
    FOREIGN KEY (tenant_id, selection_hash) REFERENCES dependency_partitions (tenant_id, selection_hash),
    CHECK (filter_mode IS NULL OR relation = 'filter'),
    CHECK (resolved IS DISTINCT FROM false OR target_name IS NULL)
);
-- "What uses X": by id, and by name (case-insensitive, as people type it); "what does this object use";
-- replacing a partition; dangling references (a small partial index: they are the exception).
CREATE INDEX IF NOT EXISTS dependency_edges_target
    ON dependency_edges (tenant_id, target_type, target_id);
CREATE INDEX IF NOT EXISTS dependency_edges_target_name
    ON dependency_edges (tenant_id, target_type, target_name_key);
CREATE INDEX IF NOT EXISTS dependency_edges_object
    ON dependency_edges (tenant_id, policy_type, external_id);
CREATE INDEX IF NOT EXISTS dependency_edges_partition
    ON dependency_edges (tenant_id, selection_hash);
CREATE INDEX IF NOT EXISTS dependency_edges_dangling
    ON dependency_edges (tenant_id) WHERE resolved = false;

-- The tenant's current edges: an object in several selections' snapshots answers from the newest
-- published snapshot that saw it (so an edge removed since does not linger from an older selection's
-- snapshot). One flat anti-join, so the planner probes object_versions' unique index and
-- snapshot_objects' version index per candidate edge instead of hashing a whole snapshot.
CREATE OR REPLACE VIEW dependency_edges_current WITH (security_invoker = true) AS
SELECT e.*, p.selection_name
FROM dependency_edges e
JOIN dependency_partitions p ON p.tenant_id = e.tenant_id AND p.selection_hash = e.selection_hash
WHERE NOT EXISTS (
    SELECT 1
    FROM object_versions v
    JOIN snapshot_objects o ON o.version_id = v.id
    JOIN dependency_partitions newer ON newer.snapshot_run_id = o.snapshot_run_id
    WHERE v.tenant_id = e.tenant_id AND v.policy_type = e.policy_type AND v.external_id = e.external_id
      AND newer.tenant_id = e.tenant_id AND newer.snapshot_run_id > e.snapshot_run_id);

-- Row-level security as for every tenant-scoped table (040, 065).
GRANT SELECT, INSERT, UPDATE, DELETE ON dependency_partitions, dependency_edges TO tenantatlas_pipeline;
GRANT SELECT ON dependency_partitions, dependency_edges TO tenantatlas_analyst;
GRANT SELECT ON dependency_edges_current TO tenantatlas_pipeline, tenantatlas_analyst;

CALL tenantatlas_tenant_rls(ARRAY['dependency_partitions', 'dependency_edges']);
