package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// organizationOf maps an organizations row, which holds the domain's
// Organization field for field.
func organizationOf(o dbsqlc.Organization) domain.Organization { return domain.Organization(o) }

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
	row, err := q.gen.InsertOrganization(ctx, dbsqlc.InsertOrganizationParams{
		Name: o.Name, IsTrial: o.Trial, EnterpriseFeatures: o.EnterpriseFeatures, CreatedAt: o.Now})
	if err != nil {
		return domain.Organization{}, fmt.Errorf("inserting organization: %w", err)
	}
	return organizationOf(row), nil
}

// OrganizationByID returns the organization with id.
func (q *Queries) OrganizationByID(ctx context.Context, id int64) (domain.Organization, error) {
	return mapRow(organizationOf)(q.gen.OrganizationByID(ctx, id))
}

// OrganizationByIDForUpdate returns the organization and locks it. In the
// lock order (see the package doc) its trials come first: a transaction
// that holds none of them locks the organization with LockOrganization.
func (q *Queries) OrganizationByIDForUpdate(ctx context.Context, id int64) (domain.Organization, error) {
	return mapRow(organizationOf)(q.gen.OrganizationByIDForUpdate(ctx, id))
}

// OrganizationIDByPublicID returns the id of the organization with a
// public id, without locking it.
func (q *Queries) OrganizationIDByPublicID(ctx context.Context, publicID string) (int64, error) {
	id, err := q.gen.OrganizationIDByPublicID(ctx, publicID)
	return id, notFound(err)
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
	if err := q.gen.SetEnterpriseFeatures(ctx, dbsqlc.SetEnterpriseFeaturesParams{ID: id, EnterpriseFeatures: on}); err != nil {
		return fmt.Errorf("setting enterprise features of organization %d: %w", id, err)
	}
	return nil
}

// MakeEnterprise turns a trial organization into a full enterprise one.
func (q *Queries) MakeEnterprise(ctx context.Context, id int64) error {
	if err := q.gen.MakeEnterprise(ctx, id); err != nil {
		return fmt.Errorf("upgrading organization %d: %w", id, err)
	}
	return nil
}

// SoftDeleteOrganization hides an organization from now on, to be purged at
// purgeAt (nil: never).
func (q *Queries) SoftDeleteOrganization(ctx context.Context, id int64, at time.Time, purgeAt *time.Time) error {
	if err := q.gen.SoftDeleteOrganization(ctx, dbsqlc.SoftDeleteOrganizationParams{ID: id, DeletedAt: &at, PurgeAt: purgeAt}); err != nil {
		return fmt.Errorf("soft-deleting organization %d: %w", id, err)
	}
	return nil
}

// SetPurgeJob records the River job that will purge the organization.
func (q *Queries) SetPurgeJob(ctx context.Context, id int64, jobID *int64) error {
	if err := q.gen.SetPurgeJob(ctx, dbsqlc.SetPurgeJobParams{ID: id, PurgeJobID: jobID}); err != nil {
		return fmt.Errorf("recording purge job of organization %d: %w", id, err)
	}
	return nil
}

// UndeleteOrganization brings a soft-deleted organization back and cancels
// its purge date.
func (q *Queries) UndeleteOrganization(ctx context.Context, id int64) error {
	if err := q.gen.UndeleteOrganization(ctx, id); err != nil {
		return fmt.Errorf("restoring organization %d: %w", id, err)
	}
	return nil
}

// PurgeOrganization erases an organization now; its projects, memberships
// and trials go with it (ON DELETE CASCADE), and each trial's eligibility
// history becomes its tombstone.
func (q *Queries) PurgeOrganization(ctx context.Context, id int64, now time.Time) error {
	if err := q.gen.PurgeOrganization(ctx, dbsqlc.PurgeOrganizationParams{ID: id, Now: now}); err != nil {
		return fmt.Errorf("purging organization %d: %w", id, err)
	}
	return nil
}

// SetEnterpriseFeaturesOf switches enterprise features of several
// organizations in one statement, locking them in id order as the lock
// order asks (an UPDATE alone would lock them in the order it finds them).
func (q *Queries) SetEnterpriseFeaturesOf(ctx context.Context, ids []int64, on bool) error {
	if err := q.gen.SetEnterpriseFeaturesOf(ctx, dbsqlc.SetEnterpriseFeaturesOfParams{Ids: ids, EnterpriseFeatures: on}); err != nil {
		return fmt.Errorf("setting enterprise features of %d organizations: %w", len(ids), err)
	}
	return nil
}
