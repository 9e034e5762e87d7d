-- Row-level security as defence in depth for tenant isolation (issue 6).
-- The pipeline's tenant-scoped sessions SET ROLE tenantatlas_pipeline and set tenantatlas.tenant_id
-- (store/scope.py); policies then confine every read and write to that tenant, even a hand-written
-- query without a tenant filter. tenantatlas_analyst reads every tenant (fleet views), writes nothing.
-- The table owner (the migrating user) is not subject to RLS: it runs migrations and administration.
-- Roles are cluster-wide: created once, reused by every database on the server.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantatlas_pipeline') THEN
        CREATE ROLE tenantatlas_pipeline NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tenantatlas_analyst') THEN
        CREATE ROLE tenantatlas_analyst NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'TenantAtlas needs the roles tenantatlas_pipeline and tenantatlas_analyst: create them '
        '(CREATE ROLE ... NOLOGIN) as an administrator, or migrate as a user with CREATEROLE';
END $$;

-- The migrating user must be able to SET ROLE to both (implicit for superusers).
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'tenantatlas_pipeline', 'MEMBER') THEN
        EXECUTE format('GRANT tenantatlas_pipeline TO %I', current_user);
    END IF;
    IF NOT pg_has_role(current_user, 'tenantatlas_analyst', 'MEMBER') THEN
        EXECUTE format('GRANT tenantatlas_analyst TO %I', current_user);
    END IF;
END $$;

ALTER VIEW latest_finished_sync_runs SET (security_invoker = true);

GRANT USAGE ON SCHEMA public TO tenantatlas_pipeline, tenantatlas_analyst;
GRANT SELECT ON tenants, selections, policy_types, schema_migrations
    TO tenantatlas_pipeline, tenantatlas_analyst;
GRANT SELECT, INSERT, UPDATE ON inventory_items, inventory_sync_runs, inventory_sync_run_types
    TO tenantatlas_pipeline;
GRANT SELECT, INSERT, UPDATE, DELETE ON missing_items, missing_item_snapshots TO tenantatlas_pipeline;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tenantatlas_pipeline;
-- The views are security_invoker: through them the pipeline role still sees only its tenant.
GRANT SELECT ON latest_finished_sync_runs, analyst_last_successful_reads, analyst_inventory_current,
    analyst_inventory_items, analyst_missing_items, analyst_latest_runs, analyst_coverage
    TO tenantatlas_pipeline;
GRANT SELECT ON inventory_items, inventory_sync_runs, inventory_sync_run_types, missing_items,
    missing_item_snapshots, latest_finished_sync_runs, analyst_last_successful_reads,
    analyst_inventory_current, analyst_inventory_items, analyst_missing_items, analyst_latest_runs,
    analyst_coverage
    TO tenantatlas_analyst;

-- The same two policies on every tenant-scoped table.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['inventory_items', 'inventory_sync_runs', 'inventory_sync_run_types',
                             'missing_items', 'missing_item_snapshots']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY pipeline_tenant ON %I TO tenantatlas_pipeline'
            ' USING (tenant_id = current_setting(''tenantatlas.tenant_id'', true))'
            ' WITH CHECK (tenant_id = current_setting(''tenantatlas.tenant_id'', true))', t);
        EXECUTE format('CREATE POLICY analyst_read ON %I FOR SELECT TO tenantatlas_analyst USING (true)', t);
    END LOOP;
END $$;
