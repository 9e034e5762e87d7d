-- Graph object ids are GUIDs and case-insensitive (issue 10, item 12). Since this migration the
-- normaliser stores them with ASCII letters lower-cased (normalize.fold_id), and `lower(x COLLATE "C")`
-- folds exactly those letters whatever the database's locale. Rows stored before under another case
-- are merged here into one row per (tenant, type, folded id), so an upper-case twin can no longer stay
-- behind and show up as missing with high confidence.
--
-- The merge keeps what each twin knew: the earliest first_seen_at, and from the most recently seen
-- twin its name, metadata, last_seen_* and last_changed_at (ties prefer the row already in folded
-- form). Running it again finds nothing to merge. missing_items holds published snapshots; they are
-- replaced whole by the next `missing_items` materialisation and are left as they were.

CREATE TEMP TABLE id_fold_merged ON COMMIT DROP AS
WITH affected AS (
    SELECT tenant_id, policy_type, lower(external_id COLLATE "C") AS folded
    FROM inventory_items
    GROUP BY 1, 2, 3
    HAVING bool_or(external_id <> lower(external_id COLLATE "C"))
), twins AS (
    SELECT i.*, a.folded,
           min(i.first_seen_at) OVER w AS merged_first_seen_at
    FROM inventory_items i
    JOIN affected a
      ON a.tenant_id = i.tenant_id AND a.policy_type = i.policy_type
     AND a.folded = lower(i.external_id COLLATE "C")
    WINDOW w AS (PARTITION BY i.tenant_id, i.policy_type, a.folded)
)
SELECT DISTINCT ON (tenant_id, policy_type, folded)
       tenant_id, policy_type, folded AS external_id, display_name, meta_jsonb,
       merged_first_seen_at AS first_seen_at, last_seen_at, last_changed_at, last_seen_sync_run_id,
       prev_seen_sync_run_id
FROM twins
ORDER BY tenant_id, policy_type, folded, last_seen_at DESC, (external_id = folded) DESC,
         last_seen_sync_run_id DESC;

DELETE FROM inventory_items i
USING id_fold_merged m
WHERE i.tenant_id = m.tenant_id AND i.policy_type = m.policy_type
  AND lower(i.external_id COLLATE "C") = m.external_id;

INSERT INTO inventory_items (tenant_id, policy_type, external_id, display_name, meta_jsonb,
                             first_seen_at, last_seen_at, last_changed_at, last_seen_sync_run_id,
                             prev_seen_sync_run_id)
SELECT tenant_id, policy_type, external_id, display_name, meta_jsonb, first_seen_at, last_seen_at,
       last_changed_at, last_seen_sync_run_id, prev_seen_sync_run_id
FROM id_fold_merged;
