package store

import (
	"github.com/trialsd/trialsd/internal/domain"

	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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

const userColumns = `id, public_id, username, email, name, password_hash, is_admin,
	email_verified, plan, plan_state, token_version, created_at, updated_at`

func scanUser(row pgx.Row) (Account, error) {
	var u Account
	err := row.Scan(userFields(&u)...)
	return u, notFound(err)
}

// userFields are the destinations of userColumns in u, then more's.
func userFields(u *Account, more ...any) []any {
	return append([]any{&u.ID, &u.PublicID, &u.Username, &u.Email, &u.Name, &u.PasswordHash, &u.IsAdmin,
		&u.EmailVerified, &u.Plan, &u.PlanState, &u.TokenVersion, &u.CreatedAt, &u.UpdatedAt}, more...)
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
	u, err := scanUser(q.db.QueryRow(ctx, `
		INSERT INTO users (username, email, name, password_hash, is_admin, job_title, company_name,
			plan, plan_state, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce(nullif($8, ''), 'free'), coalesce(nullif($9, ''), 'active'), $10, $10)
		RETURNING `+userColumns,
		p.Username, p.Email, p.Name, p.PasswordHash, p.IsAdmin, p.JobTitle, p.CompanyName, p.Plan, p.PlanState, p.Now))
	if err != nil {
		return Account{}, fmt.Errorf("inserting user: %w", taken(err))
	}
	return u, nil
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
	return scanUser(q.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, id))
}

// UserByIDForUpdate returns the user with id and locks the row until the
// transaction ends, serialising concurrent requests of one user.
func (q *Queries) UserByIDForUpdate(ctx context.Context, id int64) (Account, error) {
	return scanUser(q.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1 FOR UPDATE`, id))
}

// UserByUsername looks a user up by username, ignoring case.
func (q *Queries) UserByUsername(ctx context.Context, username string) (Account, error) {
	return scanUser(q.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(username) = lower($1)`, username))
}

// UpdateUserContact replaces a user's e-mail and name.
//
// A new address (other than in case) is unverified until its owner
// activates it: the old address's verification says nothing of it, and the
// old activation code no longer counts.
func (q *Queries) UpdateUserContact(ctx context.Context, id int64, email, name string, now time.Time) error {
	_, err := q.db.Exec(ctx, `
		UPDATE users SET email = $2, name = $3, updated_at = $4,
			email_verified = email_verified AND lower(email) = lower($2),
			activation_code_hash = CASE WHEN lower(email) = lower($2) THEN activation_code_hash END,
			activation_code_expires_at = CASE WHEN lower(email) = lower($2) THEN activation_code_expires_at END
		WHERE id = $1`, id, email, name, now)
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
	_, err := q.db.Exec(ctx, `
		UPDATE users SET is_admin = true, password_hash = coalesce($2, password_hash), updated_at = $3,
			token_version = token_version + CASE WHEN $2::text IS NULL THEN 0 ELSE 1 END
		WHERE id = $1`, id, passwordHash, now)
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
	rows, err := q.db.Query(ctx, `
		SELECT u.id, u.created_at,
		       EXISTS (SELECT FROM trials t WHERE t.user_id = u.id)
		       OR EXISTS (SELECT FROM organization_members m WHERE m.user_id = u.id)
		       OR EXISTS (SELECT FROM enterprises e WHERE e.user_id = u.id)
		FROM users u
		WHERE u.plan_state = 'pending_payment' AND u.created_at <= $1 AND (u.created_at, u.id) > ($2, $3)
		ORDER BY u.created_at, u.id LIMIT $4`, createdBefore, afterCreated, afterID, limit)
	return collect(rows, err, "finding unpaid sign-ups", pgx.RowToStructByPos[UnpaidSignup])
}

// LockUnpaidSignups locks those of the users with ids still awaiting their
// first payment and returns their ids. SKIP LOCKED passes by a user another
// transaction holds (a sweep on another replica, a trial starting).
func (q *Queries) LockUnpaidSignups(ctx context.Context, ids []int64) ([]int64, error) {
	rows, err := q.db.Query(ctx, `
		SELECT id FROM users WHERE id = ANY($1) AND plan_state = 'pending_payment'
		ORDER BY id FOR UPDATE SKIP LOCKED`, ids)
	return collect(rows, err, "locking unpaid sign-ups", pgx.RowTo[int64])
}

// DeleteUsers deletes the users with ids, with what cascades from them
// (their personal projects, API keys).
func (q *Queries) DeleteUsers(ctx context.Context, ids []int64) error {
	if _, err := q.db.Exec(ctx, `DELETE FROM users WHERE id = ANY($1)`, ids); err != nil {
		return fmt.Errorf("deleting %d users: %w", len(ids), err)
	}
	return nil
}

// UserByLogin looks a user up by username or e-mail, ignoring case.
func (q *Queries) UserByLogin(ctx context.Context, login string) (Account, error) {
	return scanUser(q.db.QueryRow(ctx, `
		SELECT `+userColumns+` FROM users WHERE lower(username) = lower($1) OR lower(email) = lower($1)
		ORDER BY lower(username) = lower($1) DESC LIMIT 1`, login))
}

// BumpTokenVersion revokes every JWT issued to the user so far.
func (q *Queries) BumpTokenVersion(ctx context.Context, id int64) error {
	if _, err := q.db.Exec(ctx, `UPDATE users SET token_version = token_version + 1 WHERE id = $1`, id); err != nil {
		return fmt.Errorf("revoking tokens of user %d: %w", id, err)
	}
	return nil
}

// ActivatePlan turns a plan awaiting payment active, and reports whether
// one was waiting.
func (q *Queries) ActivatePlan(ctx context.Context, id int64, now time.Time) (bool, error) {
	tag, err := q.db.Exec(ctx, `
		UPDATE users SET plan_state = 'active', updated_at = $2 WHERE id = $1 AND plan_state = 'pending_payment'`, id, now)
	if err != nil {
		return false, fmt.Errorf("activating plan of user %d: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// UserByEmail looks a user up by e-mail, ignoring case.
func (q *Queries) UserByEmail(ctx context.Context, email string) (Account, error) {
	return scanUser(q.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE lower(email) = lower($1)`, email))
}

// UsersByPublicIDs returns the users with these public ids (unknown ones
// are absent).
func (q *Queries) UsersByPublicIDs(ctx context.Context, publicIDs []string) ([]Account, error) {
	rows, err := q.db.Query(ctx, `SELECT `+userColumns+` FROM users WHERE public_id = ANY($1)`, publicIDs)
	return collect(rows, err, "looking up users", func(row pgx.CollectableRow) (Account, error) { return scanUser(row) })
}

// SetActivationCode stores the hash of a user's e-mail activation code.
func (q *Queries) SetActivationCode(ctx context.Context, id int64, hash []byte, expiresAt time.Time) error {
	_, err := q.db.Exec(ctx, `
		UPDATE users SET activation_code_hash = $2, activation_code_expires_at = $3 WHERE id = $1`, id, hash, expiresAt)
	if err != nil {
		return fmt.Errorf("storing activation code of user %d: %w", id, err)
	}
	return nil
}

// ActivationCode returns the hash and expiry of a user's pending code
// (nil when none), and whether the e-mail is verified already.
func (q *Queries) ActivationCode(ctx context.Context, id int64) (hash []byte, expiresAt *time.Time, verified bool, err error) {
	err = q.db.QueryRow(ctx, `
		SELECT activation_code_hash, activation_code_expires_at, email_verified FROM users WHERE id = $1 FOR UPDATE`, id).
		Scan(&hash, &expiresAt, &verified)
	return hash, expiresAt, verified, notFound(err)
}

// MarkEmailVerified records a verified e-mail and clears the code.
func (q *Queries) MarkEmailVerified(ctx context.Context, id int64, now time.Time) error {
	_, err := q.db.Exec(ctx, `
		UPDATE users SET email_verified = true, activation_code_hash = NULL, activation_code_expires_at = NULL, updated_at = $2
		WHERE id = $1`, id, now)
	if err != nil {
		return fmt.Errorf("verifying e-mail of user %d: %w", id, err)
	}
	return nil
}
