package store

import (
	"context"
	"fmt"
	"time"

	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/store/internal/dbsqlc"
)

// Unique indexes of users, as reported by UniqueViolation.
const (
	UsersUsernameKey = "users_username_lower_key"
	UsersEmailKey    = "users_email_lower_key"
)

// Account is a row of users: the user, with the secrets only the accounts
// service reads (the password's hash and the tokens' version).
type Account struct {
	domain.User
	PasswordHash *string
	TokenVersion int32
}

// accountOf maps a users row to the account.
func accountOf(u dbsqlc.User) Account {
	return Account{
		User: domain.User{ID: u.ID, PublicID: u.PublicID, Username: u.Username, Email: u.Email, Name: u.Name,
			IsAdmin: u.IsAdmin, EmailVerified: u.EmailVerified, Plan: domain.Plan(u.Plan), PlanState: domain.PlanState(u.PlanState),
			CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt},
		PasswordHash: u.PasswordHash, TokenVersion: u.TokenVersion,
	}
}

// InsertUserParams are the columns a new user is created with.
type InsertUserParams struct {
	Username     string
	Email        string
	Name         string
	PasswordHash *string
	IsAdmin      bool
	JobTitle     *string
	CompanyName  *string
	// Plan and PlanState default to domain.PlanFree and domain.PlanActive.
	Plan      domain.Plan
	PlanState domain.PlanState
	Now       time.Time
}

// InsertUser creates a user. A taken username or e-mail (case-insensitive)
// is domain.ErrUsernameTaken or domain.ErrEmailTaken, wrapping the
// UniqueViolation that names UsersUsernameKey or UsersEmailKey.
func (q *Queries) InsertUser(ctx context.Context, p InsertUserParams) (Account, error) {
	u, err := q.gen.InsertUser(ctx, dbsqlc.InsertUserParams{
		Username: p.Username, Email: p.Email, Name: p.Name, PasswordHash: p.PasswordHash, IsAdmin: p.IsAdmin,
		JobTitle: p.JobTitle, CompanyName: p.CompanyName, Plan: string(p.Plan), PlanState: string(p.PlanState), Now: p.Now})
	if err != nil {
		return Account{}, fmt.Errorf("inserting user: %w", taken(err))
	}
	return accountOf(u), nil
}

// taken names a unique violation of a user's username or e-mail as the
// conflict a client sees, keeping the violation in the chain.
func taken(err error) error {
	switch UniqueViolation(err) {
	case UsersUsernameKey:
		return fmt.Errorf("%w: %w", domain.ErrUsernameTaken, err)
	case UsersEmailKey:
		return fmt.Errorf("%w: %w", domain.ErrEmailTaken, err)
	}
	return err
}

// UserByID returns the user with id.
func (q *Queries) UserByID(ctx context.Context, id int64) (Account, error) {
	return mapRow(accountOf)(q.gen.UserByID(ctx, id))
}

// UserByIDForUpdate returns the user with id and locks the row until the
// transaction ends, serialising concurrent requests of one user.
func (q *Queries) UserByIDForUpdate(ctx context.Context, id int64) (Account, error) {
	return mapRow(accountOf)(q.gen.UserByIDForUpdate(ctx, id))
}

// UserByUsername looks a user up by username, ignoring case.
func (q *Queries) UserByUsername(ctx context.Context, username string) (Account, error) {
	return mapRow(accountOf)(q.gen.UserByUsername(ctx, username))
}

// UpdateUserContact replaces a user's e-mail and name.
//
// A new address (other than in case) is unverified until its owner
// activates it: the old address's verification says nothing of it, and the
// old activation code no longer counts.
func (q *Queries) UpdateUserContact(ctx context.Context, id int64, email, name string, now time.Time) error {
	err := q.gen.UpdateUserContact(ctx, dbsqlc.UpdateUserContactParams{ID: id, Email: email, Name: name, Now: now})
	if err != nil {
		return fmt.Errorf("updating user contact: %w", taken(err))
	}
	return nil
}

// PromoteAdmin makes a user an admin and, when passwordHash is not nil,
// replaces their password, which revokes every JWT issued to them so far:
// a token got with the old password must not outlive it, least of all
// with the admin rights it now carries.
func (q *Queries) PromoteAdmin(ctx context.Context, id int64, passwordHash *string, now time.Time) error {
	err := q.gen.PromoteAdmin(ctx, dbsqlc.PromoteAdminParams{ID: id, PasswordHash: passwordHash, Now: now})
	if err != nil {
		return fmt.Errorf("promoting user to admin: %w", err)
	}
	return nil
}

// UnpaidSignup is a user awaiting their first payment, as the unpaid
// sign-up sweep finds them.
type UnpaidSignup struct {
	ID        int64
	CreatedAt time.Time
	// Owns tells that the user has more than their sign-up: a trial, a
	// membership of an organization or an enterprise. Such a user is never
	// deleted with them (the foreign keys refuse it).
	Owns bool
}

// UnpaidSignups returns up to limit users awaiting their first payment who
// signed up by createdBefore, after the one the sweep reached
// (afterCreated, afterID), oldest first, without locking them. The plan
// states are written literally (domain.PlanPendingPayment), so that the
// partial index users_pending_payment_idx serves the query.
func (q *Queries) UnpaidSignups(ctx context.Context, createdBefore, afterCreated time.Time, afterID int64, limit int) ([]UnpaidSignup, error) {
	rows, err := q.gen.UnpaidSignups(ctx, dbsqlc.UnpaidSignupsParams{
		CreatedBefore: createdBefore, AfterCreated: afterCreated, AfterID: afterID, MaxUsers: int32(limit)})
	return mapRows(rows, err, "finding unpaid sign-ups", func(r dbsqlc.UnpaidSignupsRow) UnpaidSignup { return UnpaidSignup(r) })
}

// LockUnpaidSignups locks those of the users with ids still awaiting their
// first payment and returns their ids. SKIP LOCKED passes by a user another
// transaction holds (a sweep on another replica, a trial starting).
func (q *Queries) LockUnpaidSignups(ctx context.Context, ids []int64) ([]int64, error) {
	locked, err := q.gen.LockUnpaidSignups(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("locking unpaid sign-ups: %w", err)
	}
	return locked, nil
}

// DeleteUsers deletes the users with ids, with what cascades from them
// (their personal projects, API keys).
func (q *Queries) DeleteUsers(ctx context.Context, ids []int64) error {
	if err := q.gen.DeleteUsers(ctx, ids); err != nil {
		return fmt.Errorf("deleting %d users: %w", len(ids), err)
	}
	return nil
}

// UserByLogin looks a user up by username or e-mail, ignoring case.
func (q *Queries) UserByLogin(ctx context.Context, login string) (Account, error) {
	return mapRow(accountOf)(q.gen.UserByLogin(ctx, login))
}

// BumpTokenVersion revokes every JWT issued to the user so far.
func (q *Queries) BumpTokenVersion(ctx context.Context, id int64) error {
	if err := q.gen.BumpTokenVersion(ctx, id); err != nil {
		return fmt.Errorf("revoking tokens of user %d: %w", id, err)
	}
	return nil
}

// ActivatePlan turns a plan awaiting payment active, and reports whether
// one was waiting.
func (q *Queries) ActivatePlan(ctx context.Context, id int64, now time.Time) (bool, error) {
	n, err := q.gen.ActivatePlan(ctx, dbsqlc.ActivatePlanParams{ID: id, Now: now})
	if err != nil {
		return false, fmt.Errorf("activating plan of user %d: %w", id, err)
	}
	return n == 1, nil
}

// UserByEmail looks a user up by e-mail, ignoring case.
func (q *Queries) UserByEmail(ctx context.Context, email string) (Account, error) {
	return mapRow(accountOf)(q.gen.UserByEmail(ctx, email))
}

// UsersByPublicIDs returns the users with these public ids (unknown ones
// are absent).
func (q *Queries) UsersByPublicIDs(ctx context.Context, publicIDs []string) ([]Account, error) {
	rows, err := q.gen.UsersByPublicIDs(ctx, publicIDs)
	return mapRows(rows, err, "looking up users", accountOf)
}

// SetActivationCode stores the hash of a user's e-mail activation code.
func (q *Queries) SetActivationCode(ctx context.Context, id int64, hash []byte, expiresAt time.Time) error {
	err := q.gen.SetActivationCode(ctx, dbsqlc.SetActivationCodeParams{ID: id, ActivationCodeHash: hash, ActivationCodeExpiresAt: &expiresAt})
	if err != nil {
		return fmt.Errorf("storing activation code of user %d: %w", id, err)
	}
	return nil
}

// ActivationCode returns the hash and expiry of a user's pending code
// (nil when none), and whether the e-mail is verified already.
func (q *Queries) ActivationCode(ctx context.Context, id int64) (hash []byte, expiresAt *time.Time, verified bool, err error) {
	r, err := q.gen.ActivationCode(ctx, id)
	return r.ActivationCodeHash, r.ActivationCodeExpiresAt, r.EmailVerified, notFound(err)
}

// MarkEmailVerified records a verified e-mail and clears the code.
func (q *Queries) MarkEmailVerified(ctx context.Context, id int64, now time.Time) error {
	err := q.gen.MarkEmailVerified(ctx, dbsqlc.MarkEmailVerifiedParams{ID: id, Now: now})
	if err != nil {
		return fmt.Errorf("verifying e-mail of user %d: %w", id, err)
	}
	return nil
}
