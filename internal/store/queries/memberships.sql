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

-- name: NoticeRecipients :many
-- The trial's user and the organization's admins, each once: those of a
-- deleted organization as they were when it was deleted. A UNION, not an
-- OR in the join, so each part walks its index.
SELECT u.id, u.email, u.name, u.username, u.reminders_unsubscribed_at, o.name AS organization_name, o.purge_at
FROM trials t
JOIN organizations o ON o.id = t.organization_id
JOIN (
    SELECT t1.user_id FROM trials t1 WHERE t1.id = @trial_id
    UNION
    SELECT m.user_id FROM trials t2
    JOIN organizations o2 ON o2.id = t2.organization_id
    JOIN organization_members m ON m.organization_id = t2.organization_id
    WHERE t2.id = @trial_id AND m.role = 'admin' AND (m.deleted_at IS NULL OR m.deleted_at = o2.deleted_at)
) r ON true
JOIN users u ON u.id = r.user_id
WHERE t.id = @trial_id
ORDER BY u.id;

-- name: UnsubscribeReminders :execrows
UPDATE users SET reminders_unsubscribed_at = @at
WHERE id = @id AND lower(email) = lower(@email) AND reminders_unsubscribed_at IS NULL;
