-- Analyst views over drift (issue 13). security_invoker, so row-level security (080) applies through
-- them. Join them with tenants on tenant_id, and with inventory (analyst_inventory_items,
-- inventory_items) on (tenant_id, policy_type, external_id).

-- The published drift items of every partition, one row per object, with its tenant's key and name.
CREATE OR REPLACE VIEW analyst_drift_items WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, t.display_name AS tenant_name, d.tenant_id, d.selection_name, d.selection_hash,
       d.policy_type, d.external_id, d.display_name, d.kind, d.confidence, d.reason, d.accepted,
       (d.confidence = 'high' AND NOT d.accepted) AS alerting, d.change_count, d.changes,
       d.baseline_snapshot_id, d.current_snapshot_id, d.baseline_kind, d.computed_at
FROM drift_items d JOIN tenants t ON t.tenant_id = d.tenant_id;

-- One row per changed property (path, baseline value, current value), for filtering on a path.
CREATE OR REPLACE VIEW analyst_drift_changes WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, d.tenant_id, d.selection_name, d.policy_type, d.external_id, d.display_name,
       d.kind, d.confidence, d.accepted, c.ordinality AS change_no, c.value ->> 'path' AS path,
       c.value -> 'baseline' AS baseline_value, c.value -> 'current' AS current_value,
       d.baseline_snapshot_id, d.current_snapshot_id, d.computed_at
FROM drift_items d
JOIN tenants t ON t.tenant_id = d.tenant_id
CROSS JOIN LATERAL jsonb_array_elements(d.changes) WITH ORDINALITY AS c (value, ordinality);

-- Per partition: when drift was last published, against what, and the counts (also when zero).
CREATE OR REPLACE VIEW analyst_drift_summary WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, t.display_name AS tenant_name, r.tenant_id, r.selection_name, r.selection_hash,
       r.status, r.no_drift_reason, r.baseline_snapshot_id, r.current_snapshot_id, r.baseline_kind,
       b.snapshot_run_id AS pinned_snapshot_id, r.items, r.changed, r.added, r.missing, r.high, r.low,
       r.accepted, r.unaccepted_high, r.computed_at, r.dagster_run_id
FROM drift_results r
JOIN tenants t ON t.tenant_id = r.tenant_id
LEFT JOIN drift_baselines b ON b.tenant_id = r.tenant_id AND b.selection_hash = r.selection_hash;

-- Accepted deviations, active and revoked, with who and when.
CREATE OR REPLACE VIEW analyst_drift_acceptances WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, a.tenant_id, a.id AS acceptance_id, a.selection_name, a.policy_type,
       a.external_id, a.path, a.kind, a.accepted_value, a.note, a.accepted_by, a.accepted_at,
       a.snapshot_run_id, a.revoked_by, a.revoked_at, (a.revoked_at IS NULL) AS active
FROM drift_acceptances a JOIN tenants t ON t.tenant_id = a.tenant_id;

GRANT SELECT ON analyst_drift_items, analyst_drift_changes, analyst_drift_summary, analyst_drift_acceptances
    TO tenantatlas_pipeline, tenantatlas_analyst;
