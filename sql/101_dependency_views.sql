-- Analyst views over the dependency graph (issue 15). security_invoker: row-level security applies
-- through them (the analyst role reads every tenant, the pipeline role one). All read the current
-- edges (dependency_edges_current, sql/100).

-- Every current edge with its tenant key and the snapshot it came from.
CREATE OR REPLACE VIEW analyst_dependency_edges WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, e.tenant_id, e.selection_name, e.snapshot_run_id AS snapshot_id,
       e.policy_type, e.external_id, e.display_name, e.relation, e.target_type, e.target_id,
       e.target_name, e.group_type, e.filter_mode, e.intent, e.via_target_type, e.via_target_id,
       e.resolved
FROM dependency_edges_current e JOIN tenants t ON t.tenant_id = e.tenant_id;

-- Per tenant and group: how many objects include / exclude it, of which policy types.
CREATE OR REPLACE VIEW analyst_group_usage WITH (security_invoker = true) AS
SELECT tenant_key, tenant_id, target_id AS group_id, max(target_name) AS group_name,
       max(group_type) AS group_type, bool_and(resolved) AS resolved,
       count(DISTINCT (policy_type, external_id)) AS objects,
       count(*) FILTER (WHERE relation = 'include') AS includes,
       count(*) FILTER (WHERE relation = 'exclude') AS excludes,
       array_agg(DISTINCT policy_type ORDER BY policy_type) AS policy_types
FROM analyst_dependency_edges WHERE target_type = 'group'
GROUP BY tenant_key, tenant_id, target_id;

-- Per tenant and assignment filter: how many assignments use it in include and in exclude mode.
CREATE OR REPLACE VIEW analyst_filter_usage WITH (security_invoker = true) AS
SELECT tenant_key, tenant_id, target_id AS filter_id, max(target_name) AS filter_name,
       bool_and(resolved) AS resolved, count(DISTINCT (policy_type, external_id)) AS objects,
       count(*) FILTER (WHERE filter_mode = 'include') AS include_mode,
       count(*) FILTER (WHERE filter_mode = 'exclude') AS exclude_mode,
       array_agg(DISTINCT policy_type ORDER BY policy_type) AS policy_types
FROM analyst_dependency_edges WHERE target_type = 'assignment_filter'
GROUP BY tenant_key, tenant_id, target_id;

-- Per tenant and scope tag: how many objects carry it (assignment filters counted apart).
CREATE OR REPLACE VIEW analyst_scope_tag_usage WITH (security_invoker = true) AS
SELECT tenant_key, tenant_id, target_id AS scope_tag_id, max(target_name) AS scope_tag_name,
       bool_and(resolved) AS resolved, count(DISTINCT (policy_type, external_id)) AS objects,
       count(*) FILTER (WHERE policy_type = 'assignmentFilter') AS assignment_filters,
       array_agg(DISTINCT policy_type ORDER BY policy_type) AS policy_types
FROM analyst_dependency_edges WHERE target_type = 'scope_tag'
GROUP BY tenant_key, tenant_id, target_id;

-- Dangling references across the fleet: Graph answered and the target was not there.
CREATE OR REPLACE VIEW analyst_dangling_references WITH (security_invoker = true) AS
SELECT e.tenant_key, e.tenant_id, e.selection_name, e.snapshot_id, r.started_at AS captured_at,
       e.policy_type, e.external_id, e.display_name, e.relation, e.target_type, e.target_id,
       e.via_target_type, e.via_target_id
FROM analyst_dependency_edges e JOIN snapshot_runs r ON r.id = e.snapshot_id
WHERE e.resolved = false;

GRANT SELECT ON analyst_dependency_edges, analyst_group_usage, analyst_filter_usage,
    analyst_scope_tag_usage, analyst_dangling_references TO tenantatlas_pipeline, tenantatlas_analyst;
