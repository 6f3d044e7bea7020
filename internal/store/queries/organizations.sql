-- name: InsertOrganization :one
INSERT INTO organizations (name, is_trial, enterprise_features, created_at)
VALUES (@name, @is_trial, @enterprise_features, @created_at)
RETURNING *;

-- name: OrganizationByID :one
SELECT * FROM organizations WHERE id = @id;

-- name: OrganizationByIDForUpdate :one
SELECT * FROM organizations WHERE id = @id FOR UPDATE;

-- name: OrganizationIDByPublicID :one
SELECT id FROM organizations WHERE public_id = @public_id;

-- name: SetEnterpriseFeatures :exec
UPDATE organizations SET enterprise_features = @enterprise_features WHERE id = @id;

-- name: MakeEnterprise :exec
UPDATE organizations SET is_trial = false, enterprise_features = true WHERE id = @id;

-- name: SoftDeleteOrganization :exec
UPDATE organizations SET deleted_at = @deleted_at, purge_at = @purge_at WHERE id = @id;

-- name: SetPurgeJob :exec
UPDATE organizations SET purge_job_id = @purge_job_id WHERE id = @id;

-- name: UndeleteOrganization :exec
UPDATE organizations SET deleted_at = NULL, purge_at = NULL, purge_job_id = NULL WHERE id = @id;

-- name: PurgeOrganization :exec
-- Its projects, memberships and trials go with it (ON DELETE CASCADE);
-- each trial's eligibility history becomes its tombstone, with its dates
-- and its state at the purge.
WITH tombstones AS (
    UPDATE eligibility_history h
    SET purged_at = @now::timestamptz, outcome = t.state, expired_at = t.expired_date, deleted_at = t.deleted_date
    FROM trials t
    WHERE t.organization_id = @id::bigint AND h.trial_id = t.id
)
DELETE FROM organizations o WHERE o.id = @id::bigint;

-- name: SetEnterpriseFeaturesOf :exec
-- Locks the organizations in id order, as the lock order asks (an UPDATE
-- alone would lock them in the order it finds them).
UPDATE organizations o SET enterprise_features = @enterprise_features
FROM (SELECT id FROM organizations WHERE id = ANY(@ids::bigint[]) ORDER BY id FOR NO KEY UPDATE) l
WHERE o.id = l.id;
