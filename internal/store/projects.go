package store

import (
	"context"
	"fmt"
	"time"
)

// InsertProject creates a project of an organization (orgID) or of a user
// (ownerUserID); one of them may be zero.
func (q *Queries) InsertProject(ctx context.Context, orgID, ownerUserID int64, name string, now time.Time) (int64, error) {
	var id int64
	err := q.db.QueryRow(ctx, `
		INSERT INTO projects (organization_id, owner_user_id, name, created_at)
		VALUES (nullif($1, 0), nullif($2, 0), $3, $4) RETURNING id`, orgID, ownerUserID, name, now).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("inserting project: %w", err)
	}
	return id, nil
}

// SoftDeleteProjects hides every live project of an organization, stamping
// them with the organization's deletion time.
func (q *Queries) SoftDeleteProjects(ctx context.Context, orgID int64, at time.Time) error {
	_, err := q.db.Exec(ctx, `
		UPDATE projects SET deleted_at = $2 WHERE organization_id = $1 AND deleted_at IS NULL`, orgID, at)
	if err != nil {
		return fmt.Errorf("hiding projects of organization %d: %w", orgID, err)
	}
	return nil
}

// RestoreProjects brings back the projects hidden with the organization at
// deletedAt; ones deleted earlier stay deleted.
func (q *Queries) RestoreProjects(ctx context.Context, orgID int64, deletedAt time.Time) error {
	_, err := q.db.Exec(ctx, `
		UPDATE projects SET deleted_at = NULL WHERE organization_id = $1 AND deleted_at = $2`, orgID, deletedAt)
	if err != nil {
		return fmt.Errorf("restoring projects of organization %d: %w", orgID, err)
	}
	return nil
}
