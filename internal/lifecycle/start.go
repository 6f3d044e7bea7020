package lifecycle

import (
	"context"
	"net/mail"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/store"
)

// MaxTrialLength bounds an admin's expirationDate: a date further ahead is
// almost certainly a typo (year 9999) and would never expire in practice.
const MaxTrialLength = 10 * 365 * 24 * time.Hour

// TrialDetails are the descriptive fields of a trial request.
type TrialDetails = store.TrialDetails

// StartTrialRequest asks for an enterprise trial for the caller.
type StartTrialRequest struct {
	// UserID is whose trial it is: 0 for the caller; only admins may name
	// another user (adminCreateTrial).
	UserID int64
	// Email and Name replace the stored ones when given and different.
	Email, Name      *string
	OrganizationName *string
	// ExpirationDate and Notes are honoured only for admins.
	ExpirationDate *time.Time
	Notes          *string
	Details        TrialDetails
}

// StartedTrial identifies what StartTrial created.
type StartedTrial struct {
	TrialID        int64
	UserID         int64
	OrganizationID int64
}

// MLModelsInProduction are the accepted answers of userHasMLModelsInProduction.
var MLModelsInProduction = []string{"yes", "no", "no, but we will soon"}

// StartTrial gives the caller an enterprise trial: a new trial organization
// with the caller as its admin, the trial, its history's first event and its
// scheduled expiry, all in one transaction. A non-admin gets one self-service
// trial of lifecycle.trial_length; an admin may set the date and notes and
// start as many as they like.
func (s *Service) StartTrial(ctx context.Context, actor Actor, req StartTrialRequest, cause string) (StartedTrial, error) {
	if err := ValidateStart(req); err != nil {
		return StartedTrial{}, err
	}
	now := s.now()
	expiration := now.Add(s.cfg.TrialLength)
	var notes *string
	if actor.Admin {
		if req.ExpirationDate != nil {
			expiration = req.ExpirationDate.UTC().Truncate(time.Millisecond)
			if expiration.After(now.Add(MaxTrialLength)) {
				return StartedTrial{}, apperr.InvalidField("expirationDate", "expirationDate may be at most 10 years ahead")
			}
		}
		notes = req.Notes
	}

	var started StartedTrial
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		target := actor.UserID
		if req.UserID != 0 && req.UserID != actor.UserID {
			if !actor.Admin {
				return apperr.Errorf(apperr.Forbidden, "Only admins can start a trial for another user")
			}
			target = req.UserID
		}
		// Locking the user serialises one user's concurrent requests.
		user, err := q.UserByIDForUpdate(ctx, target)
		if err != nil {
			return notFoundAs(err, "User %d not found", target)
		}
		if err := s.updateContact(ctx, tx, user, req, now); err != nil {
			return err
		}
		started, err = s.startTrialTx(ctx, tx, actor, user, req, expiration, notes, cause)
		return err
	})
	if err != nil {
		return StartedTrial{}, err
	}
	s.logger.InfoContext(ctx, "trial started", "trial_id", started.TrialID, "user_id", started.UserID,
		"organization_id", started.OrganizationID, "expiration_date", expiration, "actor", actor.String())
	return started, nil
}

// NewUser is the account a public sign-up creates.
type NewUser struct {
	Username, Email, Name string
	// PasswordHash is nil for a user who will log in another way.
	PasswordHash          *string
	JobTitle, CompanyName *string
}

// SignUpForTrial is the public enterprise-trial sign-up: a new user (e-mail
// unverified) and their self-service trial, in one transaction. A taken
// username or e-mail is a conflict; nothing is ever attached to an existing
// account.
func (s *Service) SignUpForTrial(ctx context.Context, nu NewUser, req StartTrialRequest, cause string) (StartedTrial, error) {
	if err := ValidateStart(req); err != nil {
		return StartedTrial{}, err
	}
	now := s.now()
	var started StartedTrial
	err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		q := store.New(tx)
		user, err := q.InsertUser(ctx, store.InsertUserParams{
			Username: nu.Username, Email: nu.Email, Name: nu.Name, PasswordHash: nu.PasswordHash,
			JobTitle: nu.JobTitle, CompanyName: nu.CompanyName, Now: now,
		})
		switch store.UniqueViolation(err) {
		case store.UsersUsernameKey:
			return apperr.Errorf(apperr.Conflict, "Username is already taken")
		case store.UsersEmailKey:
			return apperr.Errorf(apperr.Conflict, "An account with this e-mail address already exists")
		}
		if err != nil {
			return err
		}
		actor := Actor{UserID: user.ID}
		started, err = s.startTrialTx(ctx, tx, actor, user, req, now.Add(s.cfg.TrialLength), nil, cause)
		return err
	})
	if err != nil {
		return StartedTrial{}, err
	}
	s.logger.InfoContext(ctx, "trial sign-up", "trial_id", started.TrialID, "user_id", started.UserID,
		"organization_id", started.OrganizationID)
	return started, nil
}

// startTrialTx creates, in tx, the trial organization with user as its
// admin, the trial, its first event and its schedule.
func (s *Service) startTrialTx(ctx context.Context, tx pgx.Tx, actor Actor, user store.User, req StartTrialRequest, expiration time.Time, notes *string, cause string) (StartedTrial, error) {
	q := store.New(tx)
	now := s.now()
	orgName := firstNonEmpty(req.OrganizationName, req.Name, &user.Name, &user.Username)
	org, err := q.InsertOrganization(ctx, orgName, true, true, now)
	if err != nil {
		return StartedTrial{}, err
	}
	if err := q.InsertMembership(ctx, org.ID, user.ID, store.RoleAdmin, now); err != nil {
		return StartedTrial{}, err
	}
	trial, err := q.InsertTrial(ctx, store.InsertTrialParams{
		UserID: user.ID, OrganizationID: org.ID, SelfService: !actor.Admin,
		ExpirationDate: expiration, Notes: notes, Details: req.Details, Now: now,
	})
	if store.UniqueViolation(err) == store.TrialsOneSelfServiceKey {
		return StartedTrial{}, apperr.Errorf(apperr.Conflict, "You have already started an enterprise trial")
	}
	if err != nil {
		return StartedTrial{}, err
	}
	if err := s.record(ctx, tx, trial, EventCreated, now, actor.String(), cause, map[string]any{
		"expirationDate": expiration, "organizationId": org.ID, "selfService": !actor.Admin,
	}); err != nil {
		return StartedTrial{}, err
	}
	if err := s.schedule(ctx, tx, trial, nil); err != nil {
		return StartedTrial{}, err
	}
	return StartedTrial{TrialID: trial.ID, UserID: user.ID, OrganizationID: org.ID}, nil
}

func (s *Service) updateContact(ctx context.Context, tx pgx.Tx, user store.User, req StartTrialRequest, now time.Time) error {
	q := store.New(tx)
	email, name := user.Email, user.Name
	if req.Email != nil && *req.Email != "" {
		email = *req.Email
	}
	if req.Name != nil && *req.Name != "" {
		name = *req.Name
	}
	if email == user.Email && name == user.Name {
		return nil
	}
	err := q.UpdateUserContact(ctx, user.ID, email, name, now)
	if store.UniqueViolation(err) == store.UsersEmailKey {
		return apperr.Errorf(apperr.Conflict, "email is already in use")
	}
	if err != nil || strings.EqualFold(email, user.Email) || s.activation == nil {
		return err
	}
	// The new address is unverified: its owner gets a code to verify it.
	user.Email, user.Name, user.EmailVerified = email, name, false
	return s.activation.SendCodeTx(ctx, tx, user)
}

// MaxUTMParams caps utmParams, as the contract does, on every path that
// takes them.
const MaxUTMParams = 50

// CheckUTMParams refuses more than MaxUTMParams utmParams entries.
func CheckUTMParams(n int) error {
	if n > MaxUTMParams {
		return apperr.InvalidField("utmParams", "utmParams may hold at most %d entries", MaxUTMParams)
	}
	return nil
}

// maxFieldLength bounds free-text fields; notes get more room.
const (
	maxFieldLength = 1000
	maxNotesLength = 10000
)

// ValidateStart checks a start-trial request's fields (lengths, e-mail,
// utmParams, the enumerated answers), without the database: the public
// sign-up runs it before its costly steps (Turnstile, the password hash),
// and starting a trial runs it again.
func ValidateStart(req StartTrialRequest) error {
	if req.Email != nil && *req.Email != "" {
		if a, err := mail.ParseAddress(*req.Email); err != nil || a.Address != *req.Email {
			return apperr.InvalidField("email", "email is not a valid e-mail address")
		}
	}
	fields := []struct {
		name  string
		value *string
	}{
		{"email", req.Email}, {"name", req.Name}, {"organizationName", req.OrganizationName},
		{"useCase", req.Details.UseCase}, {"companyName", req.Details.CompanyName},
		{"companySize", req.Details.CompanySize}, {"country", req.Details.Country},
		{"stateOrProvince", req.Details.StateOrProvince}, {"jobTitle", req.Details.JobTitle},
	}
	for _, f := range fields {
		if f.value != nil && len(*f.value) > maxFieldLength {
			return apperr.InvalidField(f.name, "%s may be at most %d characters", f.name, maxFieldLength)
		}
	}
	if req.Notes != nil && len(*req.Notes) > maxNotesLength {
		return apperr.InvalidField("notes", "notes may be at most %d characters", maxNotesLength)
	}
	if err := CheckUTMParams(len(req.Details.UTMParams)); err != nil {
		return err
	}
	if v := req.Details.UserHasMLModelsInProduction; v != nil {
		ok := false
		for _, allowed := range MLModelsInProduction {
			ok = ok || *v == allowed
		}
		if !ok {
			return apperr.InvalidField("userHasMLModelsInProduction", "userHasMLModelsInProduction must be one of %q", MLModelsInProduction)
		}
	}
	return nil
}

func firstNonEmpty(values ...*string) string {
	for _, v := range values {
		if v != nil && strings.TrimSpace(*v) != "" {
			return strings.TrimSpace(*v)
		}
	}
	return ""
}
