package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
)

const organizationColumns = `id, public_id, name, is_trial, enterprise_features, created_at, deleted_at, purge_at, purge_job_id`

func scanOrganization(row pgx.Row) (domain.Organization, error) {
	var o domain.Organization
	err := row.Scan(&o.ID, &o.PublicID, &o.Name, &o.IsTrial, &o.EnterpriseFeatures, &o.CreatedAt, &o.DeletedAt, &o.PurgeAt, &o.PurgeJobID)
	return o, notFound(err)
}

// NewOrganization is what an organization is created with.
type NewOrganization struct {
	Name string
	// Trial marks a trial organization; EnterpriseFeatures is whether it
	// starts with them (a trial's does, until it expires).
	Trial, EnterpriseFeatures bool
	Now                       time.Time
}

// InsertOrganization creates an organization.
func (q *Queries) InsertOrganization(ctx context.Context, o NewOrganization) (domain.Organization, error) {
	row, err := scanOrganization(q.db.QueryRow(ctx, `
		INSERT INTO organizations (name, is_trial, enterprise_features, created_at)
		VALUES ($1, $2, $3, $4)
		RETURNING `+organizationColumns, o.Name, o.Trial, o.EnterpriseFeatures, o.Now))
	if err != nil {
		return domain.Organization{}, fmt.Errorf("inserting organization: %w", err)
	}
	return row, nil
}

// OrganizationByID returns the organization with id.
func (q *Queries) OrganizationByID(ctx context.Context, id int64) (domain.Organization, error) {
	return scanOrganization(q.db.QueryRow(ctx, `SELECT `+organizationColumns+` FROM organizations WHERE id = $1`, id))
}

// OrganizationByIDForUpdate returns the organization and locks it. In the
// lock order (see the package doc) its trials come first: a transaction
// that holds none of them locks the organization with LockOrganization.
func (q *Queries) OrganizationByIDForUpdate(ctx context.Context, id int64) (domain.Organization, error) {
	return scanOrganization(q.db.QueryRow(ctx, `SELECT `+organizationColumns+` FROM organizations WHERE id = $1 FOR UPDATE`, id))
}

// OrganizationIDByPublicID returns the id of the organization with a
// public id, without locking it.
func (q *Queries) OrganizationIDByPublicID(ctx context.Context, publicID string) (int64, error) {
	var id int64
	if err := q.db.QueryRow(ctx, `SELECT id FROM organizations WHERE public_id = $1`, publicID).Scan(&id); err != nil {
		return 0, notFound(err)
	}
	return id, nil
}

// LockOrganization locks an organization for an operation on all of it, in
// the lock order: its trials in id order, then the organization itself. It
// returns both; ErrNotFound when the organization does not exist.
func (q *Queries) LockOrganization(ctx context.Context, id int64) (domain.Organization, []domain.Trial, error) {
	trials, err := q.TrialsOfOrganizationForUpdate(ctx, id)
	if err != nil {
		return domain.Organization{}, nil, err
	}
	org, err := q.OrganizationByIDForUpdate(ctx, id)
	if err != nil {
		return domain.Organization{}, nil, err
	}
	return org, trials, nil
}

// SetEnterpriseFeatures turns an organization's enterprise features on or
// off, as a trial starts, expires, is extended or is upgraded.
func (q *Queries) SetEnterpriseFeatures(ctx context.Context, id int64, on bool) error {
	if _, err := q.db.Exec(ctx, `UPDATE organizations SET enterprise_features = $2 WHERE id = $1`, id, on); err != nil {
		return fmt.Errorf("setting enterprise features of organization %d: %w", id, err)
	}
	return nil
}

// MakeEnterprise turns a trial organization into a full enterprise one.
func (q *Queries) MakeEnterprise(ctx context.Context, id int64) error {
	if _, err := q.db.Exec(ctx, `UPDATE organizations SET is_trial = false, enterprise_features = true WHERE id = $1`, id); err != nil {
		return fmt.Errorf("upgrading organization %d: %w", id, err)
	}
	return nil
}

// SoftDeleteOrganization hides an organization from now on, to be purged at
// purgeAt (nil: never).
func (q *Queries) SoftDeleteOrganization(ctx context.Context, id int64, at time.Time, purgeAt *time.Time) error {
	if _, err := q.db.Exec(ctx, `UPDATE organizations SET deleted_at = $2, purge_at = $3 WHERE id = $1`, id, at, purgeAt); err != nil {
		return fmt.Errorf("soft-deleting organization %d: %w", id, err)
	}
	return nil
}

// SetPurgeJob records the River job that will purge the organization.
func (q *Queries) SetPurgeJob(ctx context.Context, id int64, jobID *int64) error {
	if _, err := q.db.Exec(ctx, `UPDATE organizations SET purge_job_id = $2 WHERE id = $1`, id, jobID); err != nil {
		return fmt.Errorf("recording purge job of organization %d: %w", id, err)
	}
	return nil
}

// UndeleteOrganization brings a soft-deleted organization back and cancels
// its purge date.
func (q *Queries) UndeleteOrganization(ctx context.Context, id int64) error {
	if _, err := q.db.Exec(ctx, `UPDATE organizations SET deleted_at = NULL, purge_at = NULL, purge_job_id = NULL WHERE id = $1`, id); err != nil {
		return fmt.Errorf("restoring organization %d: %w", id, err)
	}
	return nil
}

// PurgeOrganization erases an organization; its projects, memberships and
// trials go with it (ON DELETE CASCADE).
func (q *Queries) PurgeOrganization(ctx context.Context, id int64) error {
	if _, err := q.db.Exec(ctx, `DELETE FROM organizations WHERE id = $1`, id); err != nil {
		return fmt.Errorf("purging organization %d: %w", id, err)
	}
	return nil
}

// SetEnterpriseFeaturesOf switches enterprise features of several
// organizations in one statement, locking them in id order as the lock
// order asks (an UPDATE alone would lock them in the order it finds them).
func (q *Queries) SetEnterpriseFeaturesOf(ctx context.Context, ids []int64, on bool) error {
	if _, err := q.db.Exec(ctx, `
		UPDATE organizations o SET enterprise_features = $2
		FROM (SELECT id FROM organizations WHERE id = ANY($1) ORDER BY id FOR NO KEY UPDATE) l
		WHERE o.id = l.id`, ids, on); err != nil {
		return fmt.Errorf("setting enterprise features of %d organizations: %w", len(ids), err)
	}
	return nil
}
