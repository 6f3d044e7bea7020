package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// InsertProject creates a project of an organization (orgID) or of a user
// (ownerUserID); one of them may be zero.
func (q *Queries) InsertProject(ctx context.Context, orgID, ownerUserID int64, name string, now time.Time) (int64, error) {
	id, err := q.gen.InsertProject(ctx, dbsqlc.InsertProjectParams{
		OrganizationID: orgID, OwnerUserID: ownerUserID, Name: name, CreatedAt: now})
	if err != nil {
		return 0, fmt.Errorf("inserting project: %w", err)
	}
	return id, nil
}

// SoftDeleteProjects hides every live project of an organization, stamping
// them with the organization's deletion time.
func (q *Queries) SoftDeleteProjects(ctx context.Context, orgID int64, at time.Time) error {
	err := q.gen.SoftDeleteProjects(ctx, dbsqlc.SoftDeleteProjectsParams{OrganizationID: orgID, DeletedAt: at})
	if err != nil {
		return fmt.Errorf("hiding projects of organization %d: %w", orgID, err)
	}
	return nil
}

// RestoreProjects brings back the projects hidden with the organization at
// deletedAt; ones deleted earlier stay deleted.
func (q *Queries) RestoreProjects(ctx context.Context, orgID int64, deletedAt time.Time) error {
	err := q.gen.RestoreProjects(ctx, dbsqlc.RestoreProjectsParams{OrganizationID: orgID, DeletedAt: deletedAt})
	if err != nil {
		return fmt.Errorf("restoring projects of organization %d: %w", orgID, err)
	}
	return nil
}
