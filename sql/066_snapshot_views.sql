-- Analyst views over snapshots (issue 12). security_invoker, so row-level security (065) applies
-- through them: the pipeline role sees one tenant, the analyst role every tenant.

-- Every snapshot run with its tenant key, duration and counts.
CREATE OR REPLACE VIEW analyst_snapshot_runs WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, r.tenant_id, r.id AS snapshot_id, r.selection_name, r.selection_hash, r.status,
       r.had_errors, r.error_codes, r.error_message, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration, r.objects, r.new_versions, r.items_errors,
       r.references_total, r.references_unresolved, r.requests, r.throttled, r.retries, r.dagster_run_id
FROM snapshot_runs r JOIN tenants t ON t.tenant_id = r.tenant_id;

-- Every stored version of every object, with how many snapshots saw it and the latest one that did.
CREATE OR REPLACE VIEW analyst_object_versions WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, v.tenant_id, v.policy_type, v.external_id, v.id AS version_id, v.content_hash,
       v.captured_at AS first_captured_at, v.first_snapshot_run_id, u.snapshots, u.last_snapshot_id,
       v.content
FROM object_versions v
JOIN tenants t ON t.tenant_id = v.tenant_id
LEFT JOIN LATERAL (
    SELECT count(*) AS snapshots, max(o.snapshot_run_id) AS last_snapshot_id
    FROM snapshot_objects o WHERE o.version_id = v.id
) u ON true;

-- What each snapshot saw: one row per object, with the version's hash (join object_versions for content).
CREATE OR REPLACE VIEW analyst_snapshot_objects WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, o.tenant_id, o.snapshot_run_id AS snapshot_id, r.selection_name, r.status,
       r.started_at, v.policy_type, v.external_id, o.display_name, v.id AS version_id, v.content_hash
FROM snapshot_objects o
JOIN snapshot_runs r ON r.id = o.snapshot_run_id
JOIN object_versions v ON v.id = o.version_id
JOIN tenants t ON t.tenant_id = o.tenant_id;

GRANT SELECT ON analyst_snapshot_runs, analyst_object_versions, analyst_snapshot_objects
    TO tenantatlas_pipeline, tenantatlas_analyst;
