-- Drift (issue 13, DESIGN §7): baselines an operator pins, deviations an operator accepts, and the
-- published drift of each (tenant, selection) partition. Drift itself is derived (tenantatlas_pipelines/
-- drift/); these tables hold only what people decided and what the `policy_drift` asset last published.

-- At most one pinned baseline per (tenant, selection lineage). No row: drift compares against the
-- previous succeeded snapshot (a change feed). Clearing a pin deletes its row.
CREATE TABLE IF NOT EXISTS drift_baselines (
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id),
    selection_hash   text NOT NULL,
    selection_name   text NOT NULL,
    snapshot_run_id  bigint NOT NULL REFERENCES snapshot_runs (id),
    pinned_by        text NOT NULL,
    pinned_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, selection_hash)
);

-- Accepted deviations. `path` NULL accepts the whole item; otherwise the changes at or under `path`.
-- `value_hash` fingerprints what was accepted (the item's current state, or the current values of the
-- covered changes): when the value moves on, the fingerprint no longer matches and the item alerts
-- again. `accepted_value` is the same, masked, for people. Revoking keeps the row (who and when).
CREATE TABLE IF NOT EXISTS drift_acceptances (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id),
    selection_hash   text NOT NULL,
    selection_name   text NOT NULL,
    policy_type      text NOT NULL,
    external_id      text NOT NULL CHECK (external_id <> ''),
    path             text CHECK (path <> ''),
    kind             text NOT NULL CHECK (kind IN ('changed', 'added', 'missing')),
    value_hash       text NOT NULL CHECK (value_hash ~ '^[0-9a-f]{64}$'),
    accepted_value   jsonb,
    note             text NOT NULL CHECK (btrim(note) <> ''),
    accepted_by      text NOT NULL,
    accepted_at      timestamptz NOT NULL DEFAULT now(),
    snapshot_run_id  bigint NOT NULL REFERENCES snapshot_runs (id),
    revoked_by       text,
    revoked_at       timestamptz,
    CHECK ((revoked_at IS NULL) = (revoked_by IS NULL))
);
-- One active acceptance per (object, path): accepting again supersedes the earlier one.
CREATE UNIQUE INDEX IF NOT EXISTS drift_acceptances_active
    ON drift_acceptances (tenant_id, selection_hash, policy_type, external_id, coalesce(path, ''))
    WHERE revoked_at IS NULL;

-- The published drift of one partition (tenant, selection name), written by the `policy_drift` asset
-- after each snapshot and replaced whole in one transaction: readers see the previous result or the
-- new one, never a mix. `changes` is the list of {path, baseline, current} (secrets masked).
CREATE TABLE IF NOT EXISTS drift_items (
    tenant_id            text NOT NULL REFERENCES tenants (tenant_id),
    tenant_key           text NOT NULL,
    selection_name       text NOT NULL,
    selection_hash       text NOT NULL,
    baseline_snapshot_id bigint NOT NULL,
    current_snapshot_id  bigint NOT NULL,
    baseline_kind        text NOT NULL CHECK (baseline_kind IN ('pinned', 'previous', 'explicit')),
    policy_type          text NOT NULL,
    external_id          text NOT NULL,
    display_name         text,
    kind                 text NOT NULL CHECK (kind IN ('changed', 'added', 'missing')),
    confidence           text NOT NULL CHECK (confidence IN ('high', 'low')),
    reason               text,
    accepted             boolean NOT NULL,
    changes              jsonb NOT NULL CHECK (jsonb_typeof(changes) = 'array'),
    change_count         integer NOT NULL,
    computed_at          timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, selection_name, policy_type, external_id)
);
CREATE INDEX IF NOT EXISTS drift_items_by_key ON drift_items (tenant_key, selection_name);

-- One row per published partition, also when there is no drift or nothing to compare yet: "computed,
-- no drift" and "no baseline yet" must not read like "never computed".
CREATE TABLE IF NOT EXISTS drift_results (
    tenant_id            text NOT NULL REFERENCES tenants (tenant_id),
    tenant_key           text NOT NULL,
    selection_name       text NOT NULL,
    selection_hash       text NOT NULL,
    status               text NOT NULL CHECK (status IN ('computed', 'no_snapshot')),
    no_drift_reason      text,
    baseline_snapshot_id bigint,
    current_snapshot_id  bigint,
    baseline_kind        text CHECK (baseline_kind IN ('pinned', 'previous', 'explicit')),
    items                integer NOT NULL,
    changed              integer NOT NULL,
    added                integer NOT NULL,
    missing              integer NOT NULL,
    high                 integer NOT NULL,
    low                  integer NOT NULL,
    accepted             integer NOT NULL,
    unaccepted_high      integer NOT NULL,
    computed_at          timestamptz NOT NULL,
    dagster_run_id       text,
    PRIMARY KEY (tenant_id, selection_name),
    CHECK ((status = 'computed') = (current_snapshot_id IS NOT NULL))
);

-- Row-level security as for every tenant-scoped table (040, 065): the pipeline role sees and writes one
-- tenant; the analyst role reads every tenant and writes nothing.
GRANT SELECT, INSERT, UPDATE, DELETE ON drift_baselines, drift_items, drift_results TO tenantatlas_pipeline;
GRANT SELECT, INSERT, UPDATE ON drift_acceptances TO tenantatlas_pipeline;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tenantatlas_pipeline;
GRANT SELECT ON drift_baselines, drift_acceptances, drift_items, drift_results TO tenantatlas_analyst;

CALL tenantatlas_tenant_rls(ARRAY['drift_baselines', 'drift_acceptances', 'drift_items', 'drift_results']);
