-- name: InsertMembership :exec
INSERT INTO organization_members (organization_id, user_id, role, created_at)
VALUES (@organization_id, @user_id, @role, @created_at);

-- name: SoftDeleteMemberships :exec
UPDATE organization_members SET deleted_at = @deleted_at::timestamptz
WHERE organization_id = @organization_id AND deleted_at IS NULL;

-- name: RestoreMemberships :exec
UPDATE organization_members SET deleted_at = NULL
WHERE organization_id = @organization_id AND deleted_at = @deleted_at::timestamptz;

-- name: IsMember :one
SELECT EXISTS (
    SELECT 1 FROM organization_members
    WHERE organization_id = @organization_id AND user_id = @user_id AND deleted_at IS NULL
);

-- name: MemberRole :one
SELECT role FROM organization_members
WHERE organization_id = @organization_id AND user_id = @user_id AND deleted_at IS NULL;

-- name: MakeAdmin :exec
INSERT INTO organization_members (organization_id, user_id, role, created_at)
VALUES (@organization_id, @user_id, 'admin', @created_at)
ON CONFLICT (organization_id, user_id) DO UPDATE SET role = 'admin', deleted_at = NULL;
