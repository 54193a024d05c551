-- Named queries of the governance store (check reports, protection rules, approvals).
-- Parameters are $n only.

-- name: insert_check
-- Store one check report.
INSERT INTO metadata.check_reports
    (model_id, version, check_name, status, summary, details_url, metrics, reporter)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)
RETURNING *;

-- name: latest_checks
-- The latest report per check name of one version, by name.
SELECT DISTINCT ON (check_name) *
FROM metadata.check_reports
WHERE model_id = $1 AND version = $2
ORDER BY check_name, id DESC;

-- name: latest_checks_of
-- The latest report per check name of each of the versions $2 of model $1 that is not
-- DELETED, by version, then name.
SELECT DISTINCT ON (c.version, c.check_name) c.*
FROM metadata.check_reports c
JOIN metadata.model_versions v ON v.model_id = c.model_id AND v.version = c.version
WHERE c.model_id = $1 AND c.version = ANY($2::bigint[]) AND v.state <> 'DELETED'
ORDER BY c.version, c.check_name, c.id DESC;

-- name: all_checks
-- Every report of one version, newest first (bounded).
SELECT * FROM metadata.check_reports
WHERE model_id = $1 AND version = $2
ORDER BY id DESC
LIMIT 1000;

-- name: put_rule
-- Create or replace the rule of (scope, alias).
INSERT INTO metadata.protection_rules AS r
    (scope, alias, required_checks, required_approvals, movers, required_previous_alias,
     rollback_window_s, updated_by)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (scope, alias) DO UPDATE SET
    required_checks = EXCLUDED.required_checks,
    required_approvals = EXCLUDED.required_approvals,
    movers = EXCLUDED.movers,
    required_previous_alias = EXCLUDED.required_previous_alias,
    rollback_window_s = EXCLUDED.rollback_window_s,
    update_time = now(),
    updated_by = EXCLUDED.updated_by
RETURNING *;

-- name: get_rule
-- One rule.
SELECT * FROM metadata.protection_rules WHERE scope = $1 AND alias = $2;

-- name: list_rules
-- Every rule, by name.
SELECT * FROM metadata.protection_rules ORDER BY scope, alias;

-- name: rules_for_alias
-- The rules of one alias name; a share lock so a rule cannot change while a move is judged.
SELECT * FROM metadata.protection_rules WHERE alias = $1 FOR SHARE;

-- name: delete_rule
-- Delete one rule, returning what it was.
DELETE FROM metadata.protection_rules WHERE scope = $1 AND alias = $2 RETURNING *;

-- name: put_approval
-- Record an approval; approving again replaces the comment.
INSERT INTO metadata.approvals (model_id, version, alias, approver, comment)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (model_id, version, alias, approver) DO UPDATE SET comment = EXCLUDED.comment
RETURNING *;

-- name: delete_approval
-- Withdraw one approval.
DELETE FROM metadata.approvals
WHERE model_id = $1 AND version = $2 AND alias = $3 AND approver = $4
RETURNING *;

-- name: approvals_of
-- The approvals in force of one version, oldest first.
SELECT * FROM metadata.approvals WHERE model_id = $1 AND version = $2 ORDER BY create_time;

-- name: aliases_held
-- Every alias the version ever held.
SELECT DISTINCT alias FROM metadata.alias_history WHERE model_id = $1 AND version = $2;

-- name: held_since
-- Whether the version held the alias at some moment since $4 (a history row pointing at it
-- that was still current at or after $4).
SELECT EXISTS (
    SELECT 1 FROM metadata.alias_history h
    WHERE h.model_id = $1 AND h.alias = $2 AND h.version = $3
      AND coalesce(
            (SELECT min(n.valid_from) FROM metadata.alias_history n
             WHERE n.model_id = h.model_id AND n.alias = h.alias AND n.id > h.id),
            'infinity'::timestamptz) >= $4
);
