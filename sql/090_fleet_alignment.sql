-- Fleet alignment (issue 14): each tenant compared with the golden tenant, replaced whole per tenant.
-- One row per tenant in fleet_alignment (the latest result), one row per deviation (a key that is not
-- identical) in fleet_alignment_deviations. Written by the `fleet_alignment` asset only.

CREATE TABLE IF NOT EXISTS fleet_alignment (
    tenant_id          text PRIMARY KEY REFERENCES tenants (tenant_id),
    golden_tenant_id   text NOT NULL REFERENCES tenants (tenant_id),
    selection_name     text NOT NULL,
    selection_hash     text NOT NULL,
    snapshot_id        bigint NOT NULL REFERENCES snapshot_runs (id),
    golden_snapshot_id bigint NOT NULL REFERENCES snapshot_runs (id),
    score              double precision NOT NULL CHECK (score >= 0 AND score <= 1),
    golden_objects     integer NOT NULL,
    identical          integer NOT NULL,
    different          integer NOT NULL,
    only_in_golden     integer NOT NULL,
    only_in_tenant     integer NOT NULL,
    ambiguous          integer NOT NULL,
    computed_at        timestamptz NOT NULL DEFAULT now(),
    dagster_run_id     text
);

CREATE TABLE IF NOT EXISTS fleet_alignment_deviations (
    tenant_id           text NOT NULL REFERENCES fleet_alignment (tenant_id) ON DELETE CASCADE,
    policy_type         text NOT NULL,
    display_name        text NOT NULL,
    match               text NOT NULL
                        CHECK (match IN ('different', 'only_in_source', 'only_in_target', 'ambiguous')),
    golden_external_ids text[] NOT NULL,
    tenant_external_ids text[] NOT NULL,
    changes             jsonb NOT NULL,
    change_count        integer NOT NULL
);
CREATE INDEX IF NOT EXISTS fleet_alignment_deviations_tenant ON fleet_alignment_deviations (tenant_id);

-- What analysts query: the score per tenant with keys and names, and the deviations with tenant keys.
CREATE OR REPLACE VIEW analyst_fleet_alignment WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, t.display_name AS tenant_name, g.key AS golden_tenant_key, a.selection_name,
       a.score, a.golden_objects, a.identical, a.different, a.only_in_golden, a.only_in_tenant,
       a.ambiguous, a.snapshot_id, a.golden_snapshot_id, a.computed_at
FROM fleet_alignment a JOIN tenants t ON t.tenant_id = a.tenant_id JOIN tenants g ON g.tenant_id = a.golden_tenant_id;

CREATE OR REPLACE VIEW analyst_fleet_deviations WITH (security_invoker = true) AS
SELECT t.key AS tenant_key, d.policy_type, d.display_name,
       CASE d.match WHEN 'only_in_source' THEN 'only_in_golden' WHEN 'only_in_target' THEN 'only_in_tenant'
            ELSE d.match END AS deviation,
       d.golden_external_ids, d.tenant_external_ids, d.change_count, d.changes
FROM fleet_alignment_deviations d JOIN tenants t ON t.tenant_id = d.tenant_id;

GRANT SELECT, INSERT, UPDATE, DELETE ON fleet_alignment, fleet_alignment_deviations TO tenantatlas_pipeline;
GRANT SELECT ON fleet_alignment, fleet_alignment_deviations, analyst_fleet_alignment, analyst_fleet_deviations
    TO tenantatlas_analyst;

CALL tenantatlas_tenant_rls(ARRAY['fleet_alignment', 'fleet_alignment_deviations']);
