-- Inventory core (spec 040): tenants, named selections, inventory items, the sync-run ledger.
-- Every tenant-scoped table carries tenant_id, and every query in the code filters on it.

CREATE TABLE IF NOT EXISTS tenants (
    tenant_id    text PRIMARY KEY
                 CHECK (tenant_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'),
    key          text NOT NULL UNIQUE CHECK (key ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    display_name text NOT NULL,
    enabled      boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS selections (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    payload        jsonb NOT NULL,
    selection_hash text NOT NULL CHECK (selection_hash ~ '^[0-9a-f]{64}$'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS inventory_sync_runs (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         text NOT NULL REFERENCES tenants (tenant_id),
    selection_name    text,
    selection_hash    text NOT NULL,
    selection_payload jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'skipped')),
    had_errors        boolean NOT NULL DEFAULT false,
    error_codes       text[] NOT NULL DEFAULT '{}',
    error_message     text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    dagster_run_id    text,
    worker            text,
    items_observed    integer NOT NULL DEFAULT 0,
    items_new         integer NOT NULL DEFAULT 0,
    items_changed     integer NOT NULL DEFAULT 0,
    items_errors      integer NOT NULL DEFAULT 0,
    items_filtered    integer NOT NULL DEFAULT 0,
    meta_keys_dropped bigint NOT NULL DEFAULT 0,
    requests          integer NOT NULL DEFAULT 0,
    throttled         integer NOT NULL DEFAULT 0,
    retries           integer NOT NULL DEFAULT 0,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX IF NOT EXISTS inventory_sync_runs_lineage
    ON inventory_sync_runs (tenant_id, selection_hash, started_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS inventory_sync_runs_running
    ON inventory_sync_runs (tenant_id, selection_hash) WHERE status = 'running';

-- Per-policy-type outcome of a run: "we could not look" is recorded here, type by type.
CREATE TABLE IF NOT EXISTS inventory_sync_run_types (
    sync_run_id       bigint NOT NULL REFERENCES inventory_sync_runs (id),
    tenant_id         text NOT NULL REFERENCES tenants (tenant_id),
    policy_type       text NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped')),
    error_code        text,
    error_message     text,
    items_observed    integer NOT NULL DEFAULT 0,
    items_new         integer NOT NULL DEFAULT 0,
    items_changed     integer NOT NULL DEFAULT 0,
    items_errors      integer NOT NULL DEFAULT 0,
    items_filtered    integer NOT NULL DEFAULT 0,
    meta_keys_dropped bigint NOT NULL DEFAULT 0,
    pages             integer NOT NULL DEFAULT 0,
    requests          integer NOT NULL DEFAULT 0,
    throttled         integer NOT NULL DEFAULT 0,
    retries           integer NOT NULL DEFAULT 0,
    started_at        timestamptz,
    finished_at       timestamptz,
    PRIMARY KEY (sync_run_id, policy_type)
);
CREATE INDEX IF NOT EXISTS inventory_sync_run_types_tenant
    ON inventory_sync_run_types (tenant_id, policy_type, finished_at DESC);

CREATE TABLE IF NOT EXISTS inventory_items (
    tenant_id             text NOT NULL REFERENCES tenants (tenant_id),
    policy_type           text NOT NULL,
    external_id           text NOT NULL CHECK (external_id <> ''),
    display_name          text,
    meta_jsonb            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(meta_jsonb) = 'object'),
    first_seen_at         timestamptz NOT NULL,
    last_seen_at          timestamptz NOT NULL,
    last_changed_at       timestamptz NOT NULL,
    last_seen_sync_run_id bigint NOT NULL REFERENCES inventory_sync_runs (id),
    prev_seen_sync_run_id bigint,
    PRIMARY KEY (tenant_id, policy_type, external_id),
    CHECK (last_seen_at >= first_seen_at)
);
CREATE INDEX IF NOT EXISTS inventory_items_seen ON inventory_items (tenant_id, policy_type, last_seen_at);

-- The run that counts for "missing": the latest finished run of a (tenant, selection_hash) lineage.
-- Skipped runs looked at nothing and never count; running ones have not finished.
CREATE OR REPLACE VIEW latest_finished_sync_runs AS
SELECT DISTINCT ON (tenant_id, selection_hash) *
FROM inventory_sync_runs
WHERE status IN ('succeeded', 'partial', 'failed')
ORDER BY tenant_id, selection_hash, started_at DESC, id DESC;

-- Missing items of one tenant + selection lineage, with confidence and the reason.
-- confidence is 'high' only when the reference run succeeded without errors (DESIGN.md section 1).
CREATE OR REPLACE FUNCTION missing_items_for(p_tenant_id text, p_selection_hash text)
RETURNS TABLE (
    tenant_id text, policy_type text, external_id text, display_name text,
    last_seen_at timestamptz, last_seen_sync_run_id bigint,
    confidence text, reason text, reference_sync_run_id bigint, reference_status text
)
LANGUAGE sql STABLE AS $$
    WITH ref AS (
        SELECT r.* FROM inventory_sync_runs r
        WHERE r.tenant_id = p_tenant_id AND r.selection_hash = p_selection_hash
          AND r.status IN ('succeeded', 'partial', 'failed')
        ORDER BY r.started_at DESC, r.id DESC
        LIMIT 1
    ), ref_types AS (
        SELECT ref.id, ref.tenant_id, ref.started_at, ref.status, ref.had_errors, pt.policy_type
        FROM ref CROSS JOIN LATERAL jsonb_array_elements_text(ref.selection_payload -> 'policy_types')
             AS pt (policy_type)
    )
    SELECT i.tenant_id, i.policy_type, i.external_id, i.display_name, i.last_seen_at,
           i.last_seen_sync_run_id,
           CASE WHEN rt.status = 'succeeded' AND NOT rt.had_errors THEN 'high' ELSE 'low' END,
           CASE
               WHEN coalesce(t.status, 'failed') <> 'succeeded' THEN 'type_failed'
               WHEN rt.status <> 'succeeded' OR rt.had_errors THEN 'run_incomplete'
               ELSE 'not_observed'
           END,
           rt.id, rt.status
    FROM ref_types rt
    JOIN inventory_items i
      ON i.tenant_id = rt.tenant_id AND i.policy_type = rt.policy_type AND i.last_seen_at < rt.started_at
    LEFT JOIN inventory_sync_run_types t ON t.sync_run_id = rt.id AND t.policy_type = rt.policy_type
    ORDER BY i.policy_type, i.external_id
$$;
