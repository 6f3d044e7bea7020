-- name: InsertProject :one
INSERT INTO projects (organization_id, owner_user_id, name, created_at)
VALUES (nullif(@organization_id::bigint, 0), nullif(@owner_user_id::bigint, 0), @name, @created_at)
RETURNING id;

-- name: SoftDeleteProjects :exec
UPDATE projects SET deleted_at = @deleted_at::timestamptz
WHERE organization_id = @organization_id::bigint AND deleted_at IS NULL;

-- name: RestoreProjects :exec
UPDATE projects SET deleted_at = NULL
WHERE organization_id = @organization_id::bigint AND deleted_at = @deleted_at::timestamptz;
