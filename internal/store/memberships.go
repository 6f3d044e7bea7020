package store

import (
	"context"
	"fmt"
	"time"
)

// Roles a user can hold in an organization.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// InsertMembership adds a user to an organization with a role.
func (q *Queries) InsertMembership(ctx context.Context, orgID, userID int64, role string, now time.Time) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO organization_members (organization_id, user_id, role, created_at)
		VALUES ($1, $2, $3, $4)`, orgID, userID, role, now)
	if err != nil {
		return fmt.Errorf("inserting membership: %w", err)
	}
	return nil
}

// SoftDeleteMemberships revokes every live membership of an organization,
// stamping them with the organization's deletion time.
func (q *Queries) SoftDeleteMemberships(ctx context.Context, orgID int64, at time.Time) error {
	_, err := q.db.Exec(ctx, `
		UPDATE organization_members SET deleted_at = $2
		WHERE organization_id = $1 AND deleted_at IS NULL`, orgID, at)
	if err != nil {
		return fmt.Errorf("revoking memberships of organization %d: %w", orgID, err)
	}
	return nil
}

// RestoreMemberships brings back the memberships revoked with the
// organization at deletedAt; ones removed earlier stay removed.
func (q *Queries) RestoreMemberships(ctx context.Context, orgID int64, deletedAt time.Time) error {
	_, err := q.db.Exec(ctx, `
		UPDATE organization_members SET deleted_at = NULL
		WHERE organization_id = $1 AND deleted_at = $2`, orgID, deletedAt)
	if err != nil {
		return fmt.Errorf("restoring memberships of organization %d: %w", orgID, err)
	}
	return nil
}

// IsMember reports whether the user holds a live membership of the organization.
func (q *Queries) IsMember(ctx context.Context, orgID, userID int64) (bool, error) {
	var ok bool
	err := q.db.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM organization_members
		               WHERE organization_id = $1 AND user_id = $2 AND deleted_at IS NULL)`, orgID, userID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("checking membership: %w", err)
	}
	return ok, nil
}

// MemberRole returns the user's live role in the organization, or "".
func (q *Queries) MemberRole(ctx context.Context, orgID, userID int64) (string, error) {
	var role string
	err := q.db.QueryRow(ctx, `
		SELECT role FROM organization_members
		WHERE organization_id = $1 AND user_id = $2 AND deleted_at IS NULL`, orgID, userID).Scan(&role)
	if err := notFound(err); err != nil && err != ErrNotFound {
		return "", fmt.Errorf("reading membership: %w", err)
	}
	return role, nil
}

// MakeAdmin makes the user an admin of the organization, adding or reviving
// their membership.
func (q *Queries) MakeAdmin(ctx context.Context, orgID, userID int64, now time.Time) error {
	_, err := q.db.Exec(ctx, `
		INSERT INTO organization_members (organization_id, user_id, role, created_at) VALUES ($1, $2, 'admin', $3)
		ON CONFLICT (organization_id, user_id) DO UPDATE SET role = 'admin', deleted_at = NULL`, orgID, userID, now)
	if err != nil {
		return fmt.Errorf("making user %d admin of organization %d: %w", userID, orgID, err)
	}
	return nil
}
