-- Inventory UI (issue 16), pages over snapshots and drift: a tenant's snapshots newest first, and an
-- object's drift across selections, each one index range (the UI only reads).
CREATE INDEX IF NOT EXISTS snapshot_runs_tenant_newest ON snapshot_runs (tenant_id, id DESC);
CREATE INDEX IF NOT EXISTS drift_items_object ON drift_items (tenant_id, policy_type, external_id);
