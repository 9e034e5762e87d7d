-- Snapshots (issue 12, DESIGN §6): immutable, content-addressed records of full policy content.
-- snapshot_runs / snapshot_run_types mirror the sync ledger (001); object_versions holds one row per
-- distinct (tenant, policy type, object, content hash); snapshot_objects says which version each
-- snapshot saw; snapshot_references the groups, filters and scope tags it resolved at capture time.
-- Immutability is enforced here, not only in code: versions are never updated or deleted, and
-- nothing of a finalised snapshot changes (triggers below).

CREATE TABLE IF NOT EXISTS snapshot_runs (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id             text NOT NULL REFERENCES tenants (tenant_id),
    selection_name        text,
    selection_hash        text NOT NULL,
    selection_payload     jsonb NOT NULL,
    status                text NOT NULL DEFAULT 'running'
                          CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'skipped')),
    had_errors            boolean NOT NULL DEFAULT false,
    error_codes           text[] NOT NULL DEFAULT '{}',
    error_message         text,
    started_at            timestamptz NOT NULL DEFAULT now(),
    finished_at           timestamptz,
    dagster_run_id        text,
    worker                text,
    objects               integer NOT NULL DEFAULT 0,
    new_versions          integer NOT NULL DEFAULT 0,
    items_errors          integer NOT NULL DEFAULT 0,
    references_total      integer NOT NULL DEFAULT 0,
    references_unresolved integer NOT NULL DEFAULT 0,
    requests              integer NOT NULL DEFAULT 0,
    throttled             integer NOT NULL DEFAULT 0,
    retries               integer NOT NULL DEFAULT 0,
    CHECK ((status = 'running') = (finished_at IS NULL))
);
CREATE INDEX IF NOT EXISTS snapshot_runs_lineage
    ON snapshot_runs (tenant_id, selection_hash, started_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS snapshot_runs_running
    ON snapshot_runs (tenant_id, selection_hash) WHERE status = 'running';

CREATE TABLE IF NOT EXISTS snapshot_run_types (
    snapshot_run_id  bigint NOT NULL REFERENCES snapshot_runs (id),
    tenant_id        text NOT NULL REFERENCES tenants (tenant_id),
    policy_type      text NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped')),
    error_code       text,
    error_message    text,
    objects               integer NOT NULL DEFAULT 0,
    new_versions          integer NOT NULL DEFAULT 0,
    items_errors          integer NOT NULL DEFAULT 0,
    -- references this type's objects used that no earlier type of the run had recorded (so the sum over
    -- types is the run's distinct references)
    references_total      integer NOT NULL DEFAULT 0,
    references_unresolved integer NOT NULL DEFAULT 0,
    pages            integer NOT NULL DEFAULT 0,
    requests         integer NOT NULL DEFAULT 0,
    throttled        integer NOT NULL DEFAULT 0,
    retries          integer NOT NULL DEFAULT 0,
    started_at       timestamptz,
    finished_at      timestamptz,
    PRIMARY KEY (snapshot_run_id, policy_type)
);

-- One row per distinct content of one object; `content` is the normal form (assignments included).
CREATE TABLE IF NOT EXISTS object_versions (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id             text NOT NULL REFERENCES tenants (tenant_id),
    policy_type           text NOT NULL,
    external_id           text NOT NULL CHECK (external_id <> ''),
    content_hash          text NOT NULL CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    content               jsonb NOT NULL CHECK (jsonb_typeof(content) = 'object'),
    first_snapshot_run_id bigint NOT NULL REFERENCES snapshot_runs (id),
    captured_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, policy_type, external_id, content_hash)
);

-- Which version of each object a snapshot saw: two ids and a name, so an unchanged object costs one
-- small row per snapshot, not a copy of its content. No primary key on purpose: a unique index on
-- (snapshot, version) would cost more than the row itself; the snapshot run writes each object once
-- (it de-duplicates ids across pages), and nothing else ever writes here. Both indexes are on a single
-- bigint, which B-tree deduplication stores as posting lists: a snapshot's rows share one key, and an
-- unchanged object's version id repeats from snapshot to snapshot.
CREATE TABLE IF NOT EXISTS snapshot_objects (
    snapshot_run_id bigint NOT NULL REFERENCES snapshot_runs (id),
    version_id      bigint NOT NULL REFERENCES object_versions (id),
    tenant_id       text NOT NULL REFERENCES tenants (tenant_id),
    display_name    text
);
CREATE INDEX IF NOT EXISTS snapshot_objects_snapshot ON snapshot_objects (snapshot_run_id);
CREATE INDEX IF NOT EXISTS snapshot_objects_version ON snapshot_objects (version_id);

CREATE TABLE IF NOT EXISTS snapshot_references (
    snapshot_run_id bigint NOT NULL REFERENCES snapshot_runs (id),
    tenant_id       text NOT NULL REFERENCES tenants (tenant_id),
    ref_kind        text NOT NULL CHECK (ref_kind IN ('group', 'assignment_filter', 'scope_tag')),
    ref_id          text NOT NULL CHECK (ref_id <> ''),
    name            text,
    group_type      text CHECK (group_type IN ('security', 'microsoft365', 'dynamic')),
    resolved        boolean NOT NULL,
    PRIMARY KEY (snapshot_run_id, ref_kind, ref_id),
    CHECK (resolved OR name IS NULL)
);
CREATE INDEX IF NOT EXISTS snapshot_references_target ON snapshot_references (tenant_id, ref_kind, ref_id);

-- Immutability. Versions: never updated, never deleted.
CREATE OR REPLACE FUNCTION snapshot_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'snapshot_immutable: % of % is not allowed (snapshot data is immutable)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'check_violation';
END $$;

DROP TRIGGER IF EXISTS object_versions_immutable ON object_versions;
CREATE TRIGGER object_versions_immutable BEFORE UPDATE OR DELETE ON object_versions
    FOR EACH ROW EXECUTE FUNCTION snapshot_refuse_change();

-- Membership and references are written once, while their snapshot is running.
DROP TRIGGER IF EXISTS snapshot_objects_immutable ON snapshot_objects;
CREATE TRIGGER snapshot_objects_immutable BEFORE UPDATE OR DELETE ON snapshot_objects
    FOR EACH ROW EXECUTE FUNCTION snapshot_refuse_change();
DROP TRIGGER IF EXISTS snapshot_references_immutable ON snapshot_references;
CREATE TRIGGER snapshot_references_immutable BEFORE UPDATE OR DELETE ON snapshot_references
    FOR EACH ROW EXECUTE FUNCTION snapshot_refuse_change();

-- Nothing is added to a snapshot once it is finalised (statement level: one check per insert).
CREATE OR REPLACE FUNCTION snapshot_refuse_insert_into_finalised() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows n JOIN snapshot_runs r ON r.id = n.snapshot_run_id
               WHERE r.status <> 'running') THEN
        RAISE EXCEPTION 'snapshot_immutable: INSERT into % of a finalised snapshot is not allowed',
            TG_TABLE_NAME USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS snapshot_objects_open_only ON snapshot_objects;
CREATE TRIGGER snapshot_objects_open_only AFTER INSERT ON snapshot_objects
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION snapshot_refuse_insert_into_finalised();
DROP TRIGGER IF EXISTS snapshot_references_open_only ON snapshot_references;
CREATE TRIGGER snapshot_references_open_only AFTER INSERT ON snapshot_references
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION snapshot_refuse_insert_into_finalised();

-- A run row changes only while running (finalising it is its last change); run rows are never deleted.
-- Per-type rows change only while their run is running, except that a type still `pending` when its run
-- was closed (abandoned) is failed afterwards.
CREATE OR REPLACE FUNCTION snapshot_runs_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR OLD.status <> 'running' THEN
        RAISE EXCEPTION 'snapshot_immutable: snapshot % is finalised (%) and cannot change',
            OLD.id, OLD.status USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS snapshot_runs_immutable ON snapshot_runs;
CREATE TRIGGER snapshot_runs_immutable BEFORE UPDATE OR DELETE ON snapshot_runs
    FOR EACH ROW EXECUTE FUNCTION snapshot_runs_guard();

CREATE OR REPLACE FUNCTION snapshot_run_types_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (OLD.status <> 'pending' AND EXISTS (
            SELECT 1 FROM snapshot_runs r WHERE r.id = OLD.snapshot_run_id AND r.status <> 'running')) THEN
        RAISE EXCEPTION 'snapshot_immutable: the outcome of % in snapshot % cannot change',
            OLD.policy_type, OLD.snapshot_run_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS snapshot_run_types_immutable ON snapshot_run_types;
CREATE TRIGGER snapshot_run_types_immutable BEFORE UPDATE OR DELETE ON snapshot_run_types
    FOR EACH ROW EXECUTE FUNCTION snapshot_run_types_guard();

-- Row-level security, as for the inventory tables (040): the pipeline role sees and writes one
-- tenant; the analyst role reads every tenant and writes nothing.
GRANT SELECT, INSERT, UPDATE ON snapshot_runs, snapshot_run_types TO tenantatlas_pipeline;
GRANT SELECT, INSERT ON object_versions, snapshot_objects, snapshot_references TO tenantatlas_pipeline;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tenantatlas_pipeline;
GRANT SELECT ON snapshot_runs, snapshot_run_types, object_versions, snapshot_objects, snapshot_references
    TO tenantatlas_analyst;

-- One definition of the tenant row-level-security policies, for every tenant-scoped table a migration
-- adds from here on: the pipeline role sees and writes only the bound tenant's rows, analysts read all.
CREATE OR REPLACE PROCEDURE tenantatlas_tenant_rls(tables text[])
LANGUAGE plpgsql AS $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY tables
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS pipeline_tenant ON %I', t);
        EXECUTE format(
            'CREATE POLICY pipeline_tenant ON %I TO tenantatlas_pipeline'
            ' USING (tenant_id = current_setting(''tenantatlas.tenant_id'', true))'
            ' WITH CHECK (tenant_id = current_setting(''tenantatlas.tenant_id'', true))', t);
        EXECUTE format('DROP POLICY IF EXISTS analyst_read ON %I', t);
        EXECUTE format('CREATE POLICY analyst_read ON %I FOR SELECT TO tenantatlas_analyst USING (true)', t);
    END LOOP;
END $$;

CALL tenantatlas_tenant_rls(ARRAY['snapshot_runs', 'snapshot_run_types', 'object_versions', 'snapshot_objects', 'snapshot_references']);
