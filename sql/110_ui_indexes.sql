-- Inventory UI (issue 16): the indexes its pages read through, so each page costs a bounded number of
-- index probes however large a tenant is (docs/ui.md, "Speed"). The UI only reads (analyst role).

-- Tenant inventory in name order, keyset-paged: (name, type, id) is the page key, with and without a
-- policy-type filter. coalesce: a NULL name still has a place in the order (row comparison needs it).
CREATE INDEX IF NOT EXISTS inventory_items_ui_name
    ON inventory_items (tenant_id, (coalesce(display_name, '')), policy_type, external_id);
CREATE INDEX IF NOT EXISTS inventory_items_ui_type_name
    ON inventory_items (tenant_id, policy_type, (coalesce(display_name, '')), external_id);

-- Portfolio cells: the last good read of each (tenant, policy type) is one probe.
CREATE INDEX IF NOT EXISTS inventory_sync_run_types_good
    ON inventory_sync_run_types (tenant_id, policy_type, finished_at DESC) WHERE status = 'succeeded';

-- An item's published missing rows (any selection): the state filter and the object page.
CREATE INDEX IF NOT EXISTS missing_items_item ON missing_items (tenant_id, policy_type, external_id);

-- A tenant's runs, newest first (Runs page, keyset on id).
CREATE INDEX IF NOT EXISTS inventory_sync_runs_tenant_newest ON inventory_sync_runs (tenant_id, id DESC);
