package lifecycle

import (
	"context"
	"strings"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/eligibility"
	"github.com/trialsd/trialsd/internal/store"
)

// MaxTrialLength bounds an admin's expirationDate: a date further ahead is
// almost certainly a typo (year 9999) and would never expire in practice.
const MaxTrialLength = 10 * 365 * 24 * time.Hour

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
	// TestClockID puts the trial on an admin's test clock: it starts at
	// the clock's frozen time and lives by it.
	TestClockID *int64
	Details     domain.TrialDetails
}

// StartedTrial identifies what StartTrial created.
type StartedTrial struct {
	TrialID        int64
	UserID         int64
	OrganizationID int64
	ExpirationDate time.Time
	// Observations are set by StartTrialTx, whose caller reports them
	// once its transaction committed.
	Observations
}

// StartTrial gives the caller an enterprise trial: a new trial organization
// with the caller as its admin, the trial, its history's first event and its
// scheduled expiry, all in one transaction. A non-admin gets one self-service
// trial of lifecycle.trial_length; an admin may set the date and notes.
// The eligibility rules apply to both: an admin lifts them for a start by
// granting it first (eligibility.Service.Grant).
func (s *Service) StartTrial(ctx context.Context, actor domain.Actor, req StartTrialRequest, cause string) (StartedTrial, error) {
	if _, err := ValidateStart(req); err != nil {
		return StartedTrial{}, err
	}
	var started StartedTrial
	err := s.inChange(ctx, actor, cause, func(c *change) error {
		user, err := c.lockUser(ctx, req.UserID)
		if err != nil {
			return err
		}
		if err := c.onTestClock(ctx, req.TestClockID); err != nil {
			return err
		}
		t, err := c.terms(req)
		if err != nil {
			return err
		}
		if user, err = c.updateContact(ctx, user, req); err != nil {
			return err
		}
		started, err = c.startTrial(ctx, user, req, t)
		return err
	})
	if err != nil {
		return StartedTrial{}, err
	}
	s.logger.InfoContext(ctx, "trial started", "trial_id", started.TrialID, "user_id", started.UserID,
		"organization_id", started.OrganizationID, "expiration_date", started.ExpirationDate, "actor", actor.String())
	return started, nil
}

// lockUser locks whose trial it is: the actor, or the user an admin names.
// Locking the user serialises one user's concurrent requests.
func (c *change) lockUser(ctx context.Context, userID int64) (domain.User, error) {
	target := c.actor.UserID
	if userID != 0 && userID != c.actor.UserID {
		if !c.actor.Admin {
			return domain.User{}, apperr.Errorf(apperr.Forbidden, "Only admins can start a trial for another user")
		}
		target = userID
	}
	user, err := c.q.UserByIDForUpdate(ctx, target)
	if err != nil {
		return domain.User{}, notFoundAs(err, "User %d not found", target)
	}
	return user.User, nil
}

// StartTrialTx gives user, just created in tx by a public sign-up, their
// self-service trial, in tx: the sign-up's user and trial commit together.
// The request was validated before the sign-up's costly steps, once: a
// ValidStart is the proof. The caller reports the start with
// started.Committed once tx committed.
func (s *Service) StartTrialTx(ctx context.Context, tx pgx.Tx, user domain.User, v ValidStart, cause string) (StartedTrial, error) {
	req := v.req
	c := s.begin(tx, domain.Actor{UserID: user.ID}, cause)
	c.signup = true
	t, err := c.terms(StartTrialRequest{})
	if err != nil {
		return StartedTrial{}, err
	}
	started, err := c.startTrial(ctx, user, req, t)
	started.Observations = c.observations()
	return started, err
}

// trialTerms are the expiration date and notes a new trial starts with.
type trialTerms struct {
	expiration time.Time
	notes      *string
}

// terms are the new trial's: lifecycle.trial_length from now, or, for an
// admin, the date and notes of the request.
func (c *change) terms(req StartTrialRequest) (trialTerms, error) {
	t := trialTerms{expiration: c.now.Add(c.s.cfg.TrialLength)}
	if !c.actor.Admin {
		return t, nil
	}
	if req.ExpirationDate != nil {
		t.expiration = domain.Instant(*req.ExpirationDate)
		if t.expiration.After(c.now.Add(MaxTrialLength)) {
			return trialTerms{}, apperr.InvalidField("expirationDate", "expirationDate may be at most 10 years ahead")
		}
	}
	t.notes = req.Notes
	return t, nil
}

// startTrial creates, once the eligibility rules let user's address
// through, the trial organization with user as its admin, the trial, its
// eligibility history, its first event and its schedule.
func (c *change) startTrial(ctx context.Context, user domain.User, req StartTrialRequest, terms trialTerms) (StartedTrial, error) {
	admission, err := c.s.eligibility.Admit(ctx, c.tx, eligibility.Start{Email: user.Email, Now: c.now, TestClockID: c.clockID()})
	if err != nil {
		return StartedTrial{}, err
	}
	orgName := firstNonEmpty(req.OrganizationName, req.Name, &user.Name, &user.Username)
	org, err := c.q.InsertOrganization(ctx, store.NewOrganization{Name: orgName, Trial: true, EnterpriseFeatures: true, Now: c.now})
	if err != nil {
		return StartedTrial{}, err
	}
	if err := c.q.InsertMembership(ctx, org.ID, user.ID, store.RoleAdmin, c.now); err != nil {
		return StartedTrial{}, err
	}
	selfService := !c.actor.Admin
	trial, err := c.q.InsertTrial(ctx, store.InsertTrialParams{
		UserID: user.ID, OrganizationID: org.ID, SelfService: selfService,
		ExpirationDate: terms.expiration, Notes: terms.notes, Details: req.Details, Now: c.now,
		TestClockID: c.clockID(),
	})
	if store.UniqueViolation(err) == store.TrialsOneSelfServiceKey {
		return StartedTrial{}, apperr.Errorf(apperr.Conflict, "You have already started an enterprise trial")
	}
	if err != nil {
		return StartedTrial{}, err
	}
	if err := c.s.eligibility.Record(ctx, c.tx, admission, trial.ID, c.now); err != nil {
		return StartedTrial{}, err
	}
	data := map[string]any{"expirationDate": terms.expiration, "organizationId": org.ID, "selfService": selfService}
	if g := admission.Grant; g != nil {
		data["eligibilityGrant"] = map[string]any{"id": g.ID, "grantedBy": g.GrantedBy, "note": g.Note}
	}
	if err := c.record(ctx, trial, domain.EventCreated, data); err != nil {
		return StartedTrial{}, err
	}
	if err := c.schedule(ctx, trial, nil); err != nil {
		return StartedTrial{}, err
	}
	return StartedTrial{TrialID: trial.ID, UserID: user.ID, OrganizationID: org.ID, ExpirationDate: terms.expiration}, nil
}

// updateContact replaces the user's e-mail and name with the request's,
// when given and different, and returns the user as updated. A new
// address is unverified: its owner gets a code to verify it.
func (c *change) updateContact(ctx context.Context, user domain.User, req StartTrialRequest) (domain.User, error) {
	email, name := user.Email, user.Name
	if req.Email != nil && *req.Email != "" {
		email = *req.Email
	}
	if req.Name != nil && *req.Name != "" {
		name = *req.Name
	}
	if email == user.Email && name == user.Name {
		return user, nil
	}
	if err := c.q.UpdateUserContact(ctx, user.ID, email, name, c.now); err != nil {
		return domain.User{}, err
	}
	changed := !strings.EqualFold(email, user.Email)
	user.Email, user.Name = email, name
	if !changed {
		return user, nil
	}
	user.EmailVerified = false
	if c.s.activation == nil {
		return user, nil
	}
	return user, c.s.activation.SendCodeTx(ctx, c.tx, user)
}

// ValidStart is a start-trial request that passed ValidateStart: what
// StartTrialTx takes, so that a sign-up checks its request once, before its
// costly steps, and cannot forget to.
type ValidStart struct{ req StartTrialRequest }

// ValidateStart checks a start-trial request's fields (lengths, e-mail,
// utmParams, the enumerated answers), without the database.
func ValidateStart(req StartTrialRequest) (ValidStart, error) {
	if req.Email != nil && *req.Email != "" {
		if err := domain.CheckEmail("email", *req.Email); err != nil {
			return ValidStart{}, err
		}
	}
	fields := []struct {
		name  string
		value *string
	}{{"email", req.Email}, {"name", req.Name}, {"organizationName", req.OrganizationName}}
	for _, f := range fields {
		if err := domain.CheckLength(f.name, f.value, domain.MaxFieldLength); err != nil {
			return ValidStart{}, err
		}
	}
	if err := domain.CheckLength("notes", req.Notes, domain.MaxNotesLength); err != nil {
		return ValidStart{}, err
	}
	if req.ExpirationDate != nil {
		if err := domain.CheckDate("expirationDate", *req.ExpirationDate); err != nil {
			return ValidStart{}, err
		}
	}
	if err := req.Details.Validate(); err != nil {
		return ValidStart{}, err
	}
	return ValidStart{req: req}, nil
}

func firstNonEmpty(values ...*string) string {
	for _, v := range values {
		if v != nil && strings.TrimSpace(*v) != "" {
			return strings.TrimSpace(*v)
		}
	}
	return ""
}
