-- Missing items as a table analysts query (issue 4): one snapshot per (tenant, selection) partition,
-- written by the Dagster asset `missing_items` after each sync and replaced whole in one transaction,
-- so a reader sees either the previous snapshot or the new one, never a mix.
-- "missing" stays derived (missing_items_for); this table is its latest published result.

CREATE TABLE IF NOT EXISTS missing_items (
    tenant_id             text NOT NULL REFERENCES tenants (tenant_id),
    tenant_key            text NOT NULL,
    selection_name        text NOT NULL,
    selection_hash        text NOT NULL,
    policy_type           text NOT NULL,
    external_id           text NOT NULL,
    display_name          text,
    last_seen_at          timestamptz NOT NULL,
    last_seen_sync_run_id bigint NOT NULL,
    confidence            text NOT NULL CHECK (confidence IN ('high', 'low')),
    reason                text,
    reference_sync_run_id bigint,
    computed_at           timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, selection_name, policy_type, external_id)
);
CREATE INDEX IF NOT EXISTS missing_items_by_key ON missing_items (tenant_key, selection_name);

-- One row per published partition, also when nothing is missing: "computed, none missing" must not
-- read like "never computed" (no rows in missing_items either way).
CREATE TABLE IF NOT EXISTS missing_item_snapshots (
    tenant_id             text NOT NULL REFERENCES tenants (tenant_id),
    tenant_key            text NOT NULL,
    selection_name        text NOT NULL,
    selection_hash        text NOT NULL,
    reference_sync_run_id bigint,
    reference_status      text,
    no_reference_reason   text,
    items                 integer NOT NULL,
    items_high            integer NOT NULL,
    items_low             integer NOT NULL,
    computed_at           timestamptz NOT NULL,
    dagster_run_id        text,
    PRIMARY KEY (tenant_id, selection_name)
);
