// Package enterprise creates enterprises for organizations (the v2 API):
// the enterprise's user is found or created by e-mail, additional admins are
// made organization admins, and an organization's trial is upgraded, all in
// one transaction guarded by an idempotency key.
package enterprise

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/trialsd/trialsd/internal/domain"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/trialsd/trialsd/internal/accounts"
	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/clock"
	"github.com/trialsd/trialsd/internal/lifecycle"
	"github.com/trialsd/trialsd/internal/store"
)

// Limits of the request, as the v2 API documents them.
const (
	MaxAdditionalAdmins = 100
	MaxKeyLength        = 255
)

var (
	publicID = regexp.MustCompile(`^[0-9a-f]{32}$`)
	// notUsername is what a username derived from an e-mail replaces.
	notUsername = regexp.MustCompile(`[^a-z0-9-]+`)
)

// ThirdPartyIdentifier names the enterprise in another system.
type ThirdPartyIdentifier struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// Request is the decoded body of create-enterprise.
type Request struct {
	Email                string                 `json:"email"`
	IdempotencyKey       string                 `json:"idempotencyKey"`
	AdditionalAdmins     []string               `json:"additionalAdmins"`
	ThirdPartyIdentifier []ThirdPartyIdentifier `json:"thirdPartyIdentifier"`
}

// Response is the first (and every replayed) answer.
type Response struct {
	EnterpriseID string `json:"enterpriseId"`
	UserID       string `json:"userId"`
}

// Service creates enterprises.
type Service struct {
	pool      *pgxpool.Pool
	lifecycle *lifecycle.Service
	clock     clock.Clock
}

// New returns the enterprise service.
func New(pool *pgxpool.Pool, lc *lifecycle.Service, clk clock.Clock) *Service {
	return &Service{pool: pool, lifecycle: lc, clock: clk}
}

// ValidOrganizationID tells a well-formed public organization id.
func ValidOrganizationID(id string) bool { return publicID.MatchString(id) }

func (r Request) validate() error {
	if strings.TrimSpace(r.Email) == "" {
		return apperr.InvalidField("email", "email is required")
	}
	if err := domain.CheckEmail("email", r.Email); err != nil {
		return err
	}
	if n := len(r.IdempotencyKey); n < 1 || n > MaxKeyLength {
		return apperr.InvalidField("idempotencyKey", "idempotencyKey must be 1 to %d characters", MaxKeyLength)
	}
	if r.AdditionalAdmins == nil {
		return apperr.InvalidField("additionalAdmins", "additionalAdmins is required (it may be empty)")
	}
	if len(r.AdditionalAdmins) > MaxAdditionalAdmins {
		return apperr.InvalidField("additionalAdmins", "additionalAdmins may hold at most %d ids", MaxAdditionalAdmins)
	}
	for _, id := range r.AdditionalAdmins {
		if !publicID.MatchString(id) {
			return apperr.InvalidField("additionalAdmins", "additionalAdmins must be 32-character lowercase hex user ids")
		}
	}
	for _, t := range r.ThirdPartyIdentifier {
		if t.ID == "" || t.Label == "" {
			return apperr.InvalidField("thirdPartyIdentifier", "each thirdPartyIdentifier needs an id and a label")
		}
	}
	return nil
}

// Create creates an enterprise in the organization with public id orgID on
// behalf of caller (an admin, or an admin of the organization).
func (s *Service) Create(ctx context.Context, caller domain.User, orgID string, req Request, cause string) (Response, error) {
	if err := req.validate(); err != nil {
		return Response{}, err
	}
	if len(req.ThirdPartyIdentifier) == 0 {
		req.ThirdPartyIdentifier = nil // omitted and [] are one request
	}
	canonical, err := json.Marshal(req)
	if err != nil {
		return Response{}, fmt.Errorf("encoding request: %w", err)
	}
	sum := sha256.Sum256(canonical)
	var upgrade lifecycle.UpgradedOrganization
	c := creation{caller: caller, orgID: orgID, req: req, sum: sum[:], cause: cause, upgrade: &upgrade}
	var resp Response
	err = store.InTx(ctx, s.pool, func(tx pgx.Tx) (err error) {
		upgrade = lifecycle.UpgradedOrganization{} // a retried transaction starts over
		resp, err = s.createTx(ctx, tx, c)
		return err
	})
	if err == nil {
		upgrade.Committed(ctx)
	}
	return resp, err
}

// creation is one create-enterprise request on its way through its
// transaction.
type creation struct {
	caller domain.User
	orgID  string // the organization's public id
	req    Request
	// sum is the SHA-256 of the canonical request, what its idempotency
	// key is held to.
	sum   []byte
	cause string
	// upgrade receives what upgrading the trial did, for Create to report
	// once the transaction committed.
	upgrade *lifecycle.UpgradedOrganization
}

// createTx locks the organization in the lock order, checks the caller,
// and answers a key used before from its record, or claims it and creates
// the enterprise, in tx.
func (s *Service) createTx(ctx context.Context, tx pgx.Tx, c creation) (Response, error) {
	q := store.New(tx)
	org, trials, err := lockOrganization(ctx, q, c.orgID)
	if errors.Is(err, store.ErrNotFound) {
		return Response{}, errNoOrganization(c.orgID)
	}
	if err != nil {
		return Response{}, err
	}
	if !c.caller.IsAdmin {
		if err := mayCreate(ctx, q, c.caller, org, trials); err != nil {
			return Response{}, err
		}
	}
	if org.DeletedAt != nil {
		// No new enterprise for a deleted organization, but a request it
		// answered before is answered the same again.
		prior, err := q.IdempotencyRecord(ctx, org.ID, c.req.IdempotencyKey)
		if errors.Is(err, store.ErrNotFound) {
			return Response{}, errNoOrganization(c.orgID)
		}
		if err != nil {
			return Response{}, err
		}
		return replay(prior, c)
	}
	now := s.clock.Now()
	claimed, prior, err := q.ClaimIdempotencyKey(ctx, org.ID, c.req.IdempotencyKey, c.sum, now)
	if err != nil {
		return Response{}, err
	}
	if !claimed {
		return replay(prior, c)
	}
	resp, err := s.create(ctx, tx, c, org, now)
	if err != nil {
		return Response{}, err
	}
	body, err := json.Marshal(resp)
	if err != nil {
		return Response{}, err
	}
	return resp, q.CompleteIdempotencyKey(ctx, org.ID, c.req.IdempotencyKey, 200, body)
}

// create makes the e-mail's user and the additional admins admins of org,
// records the enterprise and upgrades the organization's trial, in tx.
func (s *Service) create(ctx context.Context, tx pgx.Tx, c creation, org domain.Organization, now time.Time) (Response, error) {
	q := store.New(tx)
	user, err := s.userFor(ctx, q, c.req.Email)
	if err != nil {
		return Response{}, err
	}
	admins, err := q.UsersByPublicIDs(ctx, c.req.AdditionalAdmins)
	if err != nil {
		return Response{}, err
	}
	if len(admins) != len(unique(c.req.AdditionalAdmins)) {
		return Response{}, apperr.InvalidField("additionalAdmins", "additionalAdmins names users that do not exist")
	}
	ids := []int64{user.ID}
	for _, a := range admins {
		ids = append(ids, a.ID)
	}
	for _, id := range ids {
		if err := q.MakeAdmin(ctx, org.ID, id, now); err != nil {
			return Response{}, err
		}
	}
	third := []byte("[]")
	if c.req.ThirdPartyIdentifier != nil {
		if third, err = json.Marshal(c.req.ThirdPartyIdentifier); err != nil {
			return Response{}, err
		}
	}
	enterpriseID, err := q.InsertEnterprise(ctx, org.ID, user.ID, third, now)
	if err != nil {
		return Response{}, err
	}
	actor := domain.Actor{UserID: c.caller.ID, Admin: c.caller.IsAdmin}
	if *c.upgrade, err = s.lifecycle.UpgradeOrganizationTx(ctx, tx, org.ID, actor, domain.PathEnterprise, c.cause); err != nil {
		return Response{}, err
	}
	return Response{EnterpriseID: enterpriseID, UserID: user.PublicID}, nil
}

// replay answers a request whose key was used before: the first answer for
// the same body, a conflict for another.
func replay(prior store.IdempotencyRecord, c creation) (Response, error) {
	if string(prior.RequestSHA256) != string(c.sum) {
		return Response{}, apperr.Errorf(apperr.Conflict, "idempotencyKey %q was used with a different request", c.req.IdempotencyKey)
	}
	var resp Response
	err := json.Unmarshal(prior.Body, &resp)
	return resp, err
}

// lockOrganization locks the organization with a public id and its trials,
// in the lock order; ErrNotFound when there is none.
func lockOrganization(ctx context.Context, q *store.Queries, publicID string) (domain.Organization, []domain.Trial, error) {
	id, err := q.OrganizationIDByPublicID(ctx, publicID)
	if err != nil {
		return domain.Organization{}, nil, err
	}
	return q.LockOrganization(ctx, id)
}

// errNoOrganization is the answer for an organization that does not exist,
// is deleted, or is not the caller's to see: the same answer, so that a
// caller cannot tell them apart.
func errNoOrganization(publicID string) error {
	return apperr.Errorf(apperr.NotFound, "Organization %s not found", publicID)
}

// mayCreate tells whether caller, who is not a site admin, may create the
// organization's enterprise: they must be its admin, and it must have no
// live trial, since creating the enterprise upgrades the trial, which is a
// site admin's decision (else a trial's user would upgrade it for free). A
// caller who is not a member is told the organization does not exist.
func mayCreate(ctx context.Context, q *store.Queries, caller domain.User, org domain.Organization, trials []domain.Trial) error {
	role, err := q.MemberRole(ctx, org.ID, caller.ID)
	if err != nil {
		return err
	}
	switch {
	case role == "":
		return errNoOrganization(org.PublicID)
	case role != store.RoleAdmin:
		return apperr.Errorf(apperr.Forbidden, "Only an admin of organization %s can create its enterprise", org.PublicID)
	}
	for _, t := range trials {
		if t.State.Live() {
			return apperr.Errorf(apperr.Forbidden, "Organization %s has a trial; upgrading it takes a site admin", org.PublicID)
		}
	}
	return nil
}

// userFor finds the user with this e-mail or creates one (no password: they
// set one or sign in another way), with a username derived from the e-mail.
// An existing user is attached only once they have verified the address:
// anyone may sign up unverified as cfo@bigcorp.example, and must not become
// BigCorp's admin by it.
func (s *Service) userFor(ctx context.Context, q *store.Queries, email string) (domain.User, error) {
	u, err := q.UserByEmail(ctx, email)
	if err == nil && !u.EmailVerified {
		return domain.User{}, apperr.WithReason(apperr.Conflict, "EmailNotVerified",
			"The account with e-mail %s has not verified its address; it can be the enterprise's user once it has", email)
	}
	if !errors.Is(err, store.ErrNotFound) {
		return u.User, err
	}
	local := strings.ToLower(email[:strings.LastIndex(email, "@")])
	base := strings.Trim(notUsername.ReplaceAllString(local, "-"), "-")
	if len(base) > 20 {
		base = base[:20]
	}
	for range 5 {
		suffix := make([]byte, 3)
		_, _ = rand.Read(suffix)
		username := base + "-" + hex.EncodeToString(suffix)
		if !accounts.ValidUsername(username) {
			username = "user-" + hex.EncodeToString(suffix)
		}
		u, err = q.InsertUser(ctx, store.InsertUserParams{Username: username, Email: email, Name: local, Now: s.clock.Now()})
		if !errors.Is(err, domain.ErrUsernameTaken) {
			return u.User, err
		}
	}
	return domain.User{}, fmt.Errorf("could not derive a free username for %s", email)
}

func unique(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}
