-- Analyst views (issue 6): the questions analysts ask, answered fleet-wide, one view each.
-- security_invoker: a view runs with the reader's rights, so row-level security (040) applies through
-- it: the pipeline role sees one tenant, the analyst role every tenant.

-- The policy-type registry as a table (kept in sync from the Python registry on every migrate), so
-- coverage can show types that were never read.
CREATE TABLE IF NOT EXISTS policy_types (
    key             text PRIMARY KEY,
    collection_path text NOT NULL,
    api_version     text NOT NULL,
    name_field      text NOT NULL
);

-- The last read of each (tenant, policy type) that completed, whatever selection did it.
CREATE OR REPLACE VIEW analyst_last_successful_reads WITH (security_invoker = true) AS
SELECT DISTINCT ON (rt.tenant_id, rt.policy_type)
       rt.tenant_id, rt.policy_type, rt.sync_run_id, r.selection_name, r.started_at AS read_started_at,
       rt.finished_at AS read_finished_at, rt.items_observed
FROM inventory_sync_run_types rt
JOIN inventory_sync_runs r ON r.id = rt.sync_run_id AND r.tenant_id = rt.tenant_id
WHERE rt.status = 'succeeded'
ORDER BY rt.tenant_id, rt.policy_type, r.started_at DESC, rt.sync_run_id DESC;

-- Current inventory per tenant and type: what the latest successful read saw, and what it did not.
CREATE OR REPLACE VIEW analyst_inventory_current WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, t.display_name AS tenant_name, i.tenant_id, i.policy_type,
       count(*) FILTER (WHERE lr.read_started_at IS NOT NULL AND i.last_seen_at >= lr.read_started_at)
           AS items_current,
       count(*) FILTER (WHERE lr.read_started_at IS NULL OR i.last_seen_at < lr.read_started_at)
           AS items_not_seen_in_last_read,
       count(*) AS items_known,
       max(i.last_changed_at) AS last_change_at,
       lr.read_finished_at AS last_successful_read_at
FROM inventory_items i
JOIN tenants t ON t.tenant_id = i.tenant_id
LEFT JOIN analyst_last_successful_reads lr ON lr.tenant_id = i.tenant_id AND lr.policy_type = i.policy_type
GROUP BY t.key, t.display_name, i.tenant_id, i.policy_type, lr.read_finished_at;

-- Every inventory item with its tenant key, for ad-hoc queries.
CREATE OR REPLACE VIEW analyst_inventory_items WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, i.tenant_id, i.policy_type, i.external_id, i.display_name, i.meta_jsonb,
       i.first_seen_at, i.last_seen_at, i.last_changed_at, i.last_seen_sync_run_id
FROM inventory_items i JOIN tenants t ON t.tenant_id = i.tenant_id;

-- Missing items of every tenant x named selection, derived live, with confidence and the reason:
-- type_failed (the reference run could not read the type), run_incomplete (the run was partial,
-- failed or skipped bad items), not_observed (a clean run did not see it).
CREATE OR REPLACE VIEW analyst_missing_items WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, s.name AS selection_name, s.selection_hash, m.policy_type, m.external_id,
       m.display_name, m.last_seen_at, m.confidence, m.reason, m.reference_sync_run_id, m.reference_status
FROM tenants t
CROSS JOIN selections s
CROSS JOIN LATERAL missing_items_for(t.tenant_id, s.selection_hash) m;

-- The latest run of every tenant + selection lineage (any status), with its error codes and counts.
CREATE OR REPLACE VIEW analyst_latest_runs WITH (security_invoker = true) AS
SELECT DISTINCT ON (r.tenant_id, r.selection_hash)
       t.key AS tenant_key, r.tenant_id, r.selection_name, r.selection_hash, r.id AS sync_run_id, r.status,
       r.had_errors, r.error_codes, r.error_message, r.started_at, r.finished_at,
       r.finished_at - r.started_at AS duration, r.items_observed, r.items_new, r.items_changed,
       r.items_errors, r.meta_keys_dropped, r.requests, r.throttled, r.dagster_run_id
FROM inventory_sync_runs r JOIN tenants t ON t.tenant_id = r.tenant_id
ORDER BY r.tenant_id, r.selection_hash, r.started_at DESC, r.id DESC;

-- Coverage per tenant x policy type: when each type was last read successfully and how long ago,
-- and how the latest attempt ended. A type never read successfully has NULL last_success_at.
CREATE OR REPLACE VIEW analyst_coverage WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, t.tenant_id, pt.key AS policy_type,
       lr.read_finished_at AS last_success_at,
       now() - lr.read_finished_at AS last_success_age,
       lr.items_observed AS last_success_items,
       la.status AS last_attempt_status, la.error_code AS last_attempt_error_code,
       la.finished_at AS last_attempt_at
FROM tenants t
CROSS JOIN policy_types pt
LEFT JOIN analyst_last_successful_reads lr ON lr.tenant_id = t.tenant_id AND lr.policy_type = pt.key
LEFT JOIN LATERAL (
    SELECT rt.status, rt.error_code, rt.finished_at
    FROM inventory_sync_run_types rt
    WHERE rt.tenant_id = t.tenant_id AND rt.policy_type = pt.key AND rt.status <> 'pending'
    ORDER BY rt.finished_at DESC NULLS LAST, rt.sync_run_id DESC
    LIMIT 1
) la ON true
WHERE t.enabled;
