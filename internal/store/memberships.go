package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// Roles a user can hold in an organization.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// InsertMembership adds a user to an organization with a role.
func (q *Queries) InsertMembership(ctx context.Context, orgID, userID int64, role string, now time.Time) error {
	err := q.gen.InsertMembership(ctx, dbsqlc.InsertMembershipParams{
		OrganizationID: orgID, UserID: userID, Role: role, CreatedAt: now})
	if err != nil {
		return fmt.Errorf("inserting membership: %w", err)
	}
	return nil
}

// SoftDeleteMemberships revokes every live membership of an organization,
// stamping them with the organization's deletion time.
func (q *Queries) SoftDeleteMemberships(ctx context.Context, orgID int64, at time.Time) error {
	err := q.gen.SoftDeleteMemberships(ctx, dbsqlc.SoftDeleteMembershipsParams{OrganizationID: orgID, DeletedAt: at})
	if err != nil {
		return fmt.Errorf("revoking memberships of organization %d: %w", orgID, err)
	}
	return nil
}

// RestoreMemberships brings back the memberships revoked with the
// organization at deletedAt; ones removed earlier stay removed.
func (q *Queries) RestoreMemberships(ctx context.Context, orgID int64, deletedAt time.Time) error {
	err := q.gen.RestoreMemberships(ctx, dbsqlc.RestoreMembershipsParams{OrganizationID: orgID, DeletedAt: deletedAt})
	if err != nil {
		return fmt.Errorf("restoring memberships of organization %d: %w", orgID, err)
	}
	return nil
}

// IsMember reports whether the user holds a live membership of the organization.
func (q *Queries) IsMember(ctx context.Context, orgID, userID int64) (bool, error) {
	ok, err := q.gen.IsMember(ctx, dbsqlc.IsMemberParams{OrganizationID: orgID, UserID: userID})
	if err != nil {
		return false, fmt.Errorf("checking membership: %w", err)
	}
	return ok, nil
}

// MemberRole returns the user's live role in the organization, or "".
func (q *Queries) MemberRole(ctx context.Context, orgID, userID int64) (string, error) {
	role, err := q.gen.MemberRole(ctx, dbsqlc.MemberRoleParams{OrganizationID: orgID, UserID: userID})
	if err := notFound(err); err != nil && err != ErrNotFound {
		return "", fmt.Errorf("reading membership: %w", err)
	}
	return role, nil
}

// MakeAdmin makes the user an admin of the organization, adding or reviving
// their membership.
func (q *Queries) MakeAdmin(ctx context.Context, orgID, userID int64, now time.Time) error {
	err := q.gen.MakeAdmin(ctx, dbsqlc.MakeAdminParams{OrganizationID: orgID, UserID: userID, CreatedAt: now})
	if err != nil {
		return fmt.Errorf("making user %d admin of organization %d: %w", userID, orgID, err)
	}
	return nil
}

// Recipient is one person a trial's notice goes to.
type Recipient struct {
	UserID                  int64
	Email, Name, Username   string
	RemindersUnsubscribedAt *time.Time
	Organization            string
	// PurgeAt is when the organization is erased, once deleted.
	PurgeAt *time.Time
}

// NoticeRecipients returns the trial's user and its organization's admins,
// each once, with the organization's name.
func (q *Queries) NoticeRecipients(ctx context.Context, trialID int64) ([]Recipient, error) {
	rows, err := q.gen.NoticeRecipients(ctx, trialID)
	return mapRows(rows, err, "reading a notice's recipients", func(r dbsqlc.NoticeRecipientsRow) Recipient {
		return Recipient{UserID: r.ID, Email: r.Email, Name: r.Name, Username: r.Username,
			RemindersUnsubscribedAt: r.RemindersUnsubscribedAt, Organization: r.OrganizationName, PurgeAt: r.PurgeAt}
	})
}

// UnsubscribeReminders records that user id, still at email, wants no more
// reminders; false when the address is no longer theirs or they already
// had unsubscribed.
func (q *Queries) UnsubscribeReminders(ctx context.Context, id int64, email string, at time.Time) (bool, error) {
	n, err := q.gen.UnsubscribeReminders(ctx, dbsqlc.UnsubscribeRemindersParams{ID: id, Email: email, At: &at})
	if err != nil {
		return false, fmt.Errorf("unsubscribing user %d: %w", id, err)
	}
	return n == 1, nil
}
