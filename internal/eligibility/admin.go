package eligibility

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/trialsd/trialsd/internal/apperr"
	"github.com/trialsd/trialsd/internal/domain"
	"github.com/trialsd/trialsd/internal/logging"
	"github.com/trialsd/trialsd/internal/store"
)

// maxShown bounds the history and grants a report lists.
const maxShown = 50

// errNoRules answers an admin's change to the rules of a daemon built
// without them.
var errNoRules = apperr.Errorf(apperr.Unavailable, "Trial eligibility is not set up on this server")

// Subject is what an admin asks about or grants to: an address, or a
// company domain. Exactly one is set.
type Subject struct {
	Email  string
	Domain string
}

// parse checks s and returns the address (zero for a domain) and the
// company domain it names.
func (s Subject) parse() (Address, string, error) {
	email, dom := strings.TrimSpace(s.Email), strings.ToLower(strings.TrimSpace(s.Domain))
	switch {
	case (email == "") == (dom == ""):
		return Address{}, "", apperr.InvalidField("email", "give either email or domain")
	case email != "":
		if err := domain.CheckEmail("email", email); err != nil {
			return Address{}, "", err
		}
		a := Normalize(email)
		return a, a.Company, nil
	}
	a := Normalize("x@" + dom)
	if !strings.Contains(a.Host, ".") || strings.ContainsAny(dom, "@ /") {
		return Address{}, "", apperr.InvalidField("domain", "domain must be a domain such as example.com")
	}
	return Address{}, a.Company, nil
}

// Report is what the rules say of an address or a domain, for an admin:
// the verdict, and the company domain's history and grants.
type Report struct {
	Domain string
	// Eligible and Reason are the verdict for a new trial now; for a
	// domain, of a new address at it.
	Eligible bool
	Reason   string
	Message  string
	Limits   Limits
	Counts   Counts
	// Grant, for an admin, is the unused grant that lifts Reason: the next
	// start would use it, so Eligible is true.
	Grant   *Grant
	History []Trial
	Grants  []Grant
}

// Trial is one trial of a domain's history.
type Trial struct {
	TrialID   int64
	StartedAt time.Time
	// State is the live trial's; "purged" for a tombstone, whose Outcome
	// is its state at the purge.
	State     string
	Outcome   string
	ExpiredAt *time.Time
	DeletedAt *time.Time
	PurgedAt  *time.Time
	// OfAddress marks the trials of the address asked about.
	OfAddress bool
	GrantID   *int64
}

// Grant is an admin's grant of one trial more.
type Grant struct {
	ID int64
	// Subject is the masked address or the domain.
	Subject   string
	Note      string
	GrantedBy string
	GrantedAt time.Time
	TrialID   *int64
	UsedAt    *time.Time
}

func grantOf(g store.EligibilityGrant) Grant {
	return Grant{ID: g.ID, Subject: g.Subject, Note: g.Note, GrantedBy: g.GrantedBy, GrantedAt: g.GrantedAt, TrialID: g.TrialID, UsedAt: g.UsedAt}
}

// Check is the pre-flight: whether sub could start a trial now, as Admit
// would answer. An anonymous caller (full false) is told only what depends
// on the address's domain (disposable, the company's limits and grants)
// and a generic reason, so the answer, and the work behind it, is the same
// for an address with an account and one without. An admin (full) gets
// the address's own rule and grants too, the reason, the limits and the
// counts; a domain is asked about as a new address at it. A nil Service,
// or one with every rule off, finds everyone eligible.
func (s *Service) Check(ctx context.Context, sub Subject, full bool) (Report, error) {
	a, company, err := sub.parse()
	if err != nil {
		return Report{}, err
	}
	if s.off() {
		return Report{Domain: company, Eligible: true, Limits: Limits{Source: "off"}}, nil
	}
	withAddress := full && a.Normalized != ""
	if err := s.needKey(withAddress); err != nil {
		return Report{}, err
	}
	if a.Normalized == "" {
		a = Normalize("x@" + company)
	}
	v, grant, err := s.verdictNow(ctx, a, withAddress)
	if err != nil {
		return Report{}, err
	}
	r := Report{Domain: company, Eligible: v.Reason == "" || grant != nil}
	switch {
	case full:
		r.Limits, r.Counts, r.Reason, r.Grant = v.Limits, v.Counts, v.Reason, grant
		if !r.Eligible {
			r.Message = refusals[v.Reason].message
		}
	case !r.Eligible:
		r.Message = GenericRefusal
	}
	return r, nil
}

// verdictNow judges a start of a, of real time, now, and finds the unused
// grant that would lift its refusal, if any; the address's own rule and
// grants count only withAddress.
func (s *Service) verdictNow(ctx context.Context, a Address, withAddress bool) (verdict, *Grant, error) {
	q := store.New(s.pool)
	l, err := s.limits(ctx, q, a.Company)
	if err != nil {
		return verdict{}, nil, err
	}
	v, err := s.judge(ctx, q, question{addr: a, now: s.clock.Now(), withAddress: withAddress, limits: l})
	if err != nil || v.Reason == "" {
		return v, nil, err
	}
	var hash []byte
	if withAddress {
		hash = s.hash(a)
	}
	g, ok, err := q.UnusedEligibilityGrant(ctx, grantFor(hash, a.Company, v.Reason))
	if err != nil || !ok {
		return v, nil, err
	}
	granted := grantOf(g)
	return v, &granted, nil
}

// Show is Check for an admin, with the domain's latest history and
// grants; the trials of the address asked about are marked.
func (s *Service) Show(ctx context.Context, sub Subject) (Report, error) {
	r, err := s.Check(ctx, sub, true)
	if err != nil || s == nil {
		return r, err
	}
	var h []byte
	if a, _, _ := sub.parse(); a.Normalized != "" {
		h = s.hash(a)
	}
	q := store.New(s.pool)
	rows, err := q.HistoryOfDomain(ctx, r.Domain, maxShown)
	if err != nil {
		return Report{}, err
	}
	for _, row := range rows {
		r.History = append(r.History, trialOf(row, h))
	}
	grants, err := q.EligibilityGrantsOf(ctx, r.Domain, maxShown)
	if err != nil {
		return Report{}, err
	}
	for _, g := range grants {
		r.Grants = append(r.Grants, grantOf(g))
	}
	return r, nil
}

// needKey refuses to hash an address (when hashing) without the daemon's
// key: an operator command run without auth.jwt_secret or
// eligibility.history_key would look up, and grant, another hash.
func (s *Service) needKey(hashing bool) error {
	if hashing && !s.keyed {
		return apperr.Errorf(apperr.Invalid, "Addresses are kept as a hash keyed by eligibility.history_key or auth.jwt_secret: set the daemon's")
	}
	return nil
}

func trialOf(h store.TrialHistory, addressHash []byte) Trial {
	t := Trial{
		TrialID: h.TrialID, StartedAt: h.StartedAt, State: string(h.State), Outcome: h.Outcome, GrantID: h.GrantID,
		ExpiredAt: h.ExpiredAt, DeletedAt: h.DeletedAt, PurgedAt: h.PurgedAt,
		OfAddress: addressHash != nil && string(addressHash) == string(h.AddressHash),
	}
	if t.State == "" {
		t.State = "purged"
	}
	return t
}

// GrantRequest is an admin's grant of one trial more to an address or a
// domain, with the reason.
type GrantRequest struct {
	Subject
	Note string
}

// Grant records an admin's grant: the next trial start of the address
// (whatever rule refuses it) or of anyone at the domain (the domain's
// limits) goes through, once.
func (s *Service) Grant(ctx context.Context, actor domain.Actor, req GrantRequest) (Grant, error) {
	if s == nil {
		return Grant{}, errNoRules
	}
	a, company, err := req.parse()
	if err != nil {
		return Grant{}, err
	}
	if err := s.needKey(a.Normalized != ""); err != nil {
		return Grant{}, err
	}
	if strings.TrimSpace(req.Note) == "" {
		return Grant{}, apperr.InvalidField("note", "note is required: say why the rules are lifted")
	}
	if err := domain.CheckLength("note", &req.Note, domain.MaxFieldLength); err != nil {
		return Grant{}, err
	}
	g := store.EligibilityGrant{Domain: company, Subject: company, Note: req.Note, GrantedBy: actor.String(), GrantedAt: s.clock.Now()}
	if a.Normalized != "" {
		g.AddressHash, g.Subject = s.hash(a), logging.MaskEmail(a.Normalized)
	}
	g, err = store.New(s.pool).InsertEligibilityGrant(ctx, g)
	if err != nil {
		return Grant{}, err
	}
	s.logger.InfoContext(ctx, "trial eligibility granted", "grant_id", g.ID, "subject", g.Subject, "actor", g.GrantedBy, "note", g.Note)
	return grantOf(g), nil
}

// DomainLimitsRequest sets a company domain's own limits: 0 is no limit.
type DomainLimitsRequest struct {
	Domain         string
	Active, Trials int
	Note           string
}

// SetDomainLimits gives a company domain its own limits (a large customer
// exempted, or allowed more), replacing the configured ones for it.
func (s *Service) SetDomainLimits(ctx context.Context, actor domain.Actor, req DomainLimitsRequest) error {
	if s == nil {
		return errNoRules
	}
	_, company, err := Subject{Domain: req.Domain}.parse()
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"activeLimit", req.Active}, {"trialsLimit", req.Trials}} {
		if f.n < 0 {
			return apperr.InvalidField(f.name, "%s is a whole number from 0 (no limit) up", f.name)
		}
	}
	if strings.TrimSpace(req.Note) == "" {
		return apperr.InvalidField("note", "note is required: say why the domain has limits of its own")
	}
	if err := domain.CheckLength("note", &req.Note, domain.MaxFieldLength); err != nil {
		return err
	}
	l := store.DomainLimits{Domain: company, Active: req.Active, Trials: req.Trials, Note: req.Note, SetBy: actor.String(), SetAt: s.clock.Now()}
	if err := store.New(s.pool).SetEligibilityDomainLimits(ctx, l); err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "trial eligibility limits set", "domain", company, "active_limit", req.Active,
		"trials_limit", req.Trials, "actor", l.SetBy, "note", req.Note)
	return nil
}

// Prune forgets the tombstones older than eligibility.history_retention,
// and the used grants whose trial went with them; it returns how many
// tombstones went.
func (s *Service) Prune(ctx context.Context) (int64, error) {
	if s == nil {
		return 0, nil
	}
	return store.New(s.pool).PruneEligibilityHistory(ctx, s.clock.Now().Add(-s.cfg.HistoryRetention))
}

// backfillBatch is how many trials one backfill transaction adds.
const backfillBatch = 1000

// Backfill adds the trials that predate the history (those the migration
// that made it found) to it, in batches; a restart resumes it. It returns
// how many it added.
func (s *Service) Backfill(ctx context.Context) (int, error) {
	if s == nil {
		return 0, nil
	}
	var added int
	for after := int64(0); ; {
		var n int
		err := store.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			q := store.New(tx)
			trials, err := q.TrialsToBackfill(ctx, after, backfillBatch)
			n = len(trials)
			if err != nil || n == 0 {
				return err
			}
			for _, t := range trials {
				a := Normalize(t.Email)
				h := store.TrialHistory{TrialID: t.ID, AddressHash: s.hash(a), Domain: a.Company, StartedAt: t.CreatedAt, TestClockID: t.TestClockID}
				if err := q.InsertTrialHistory(ctx, h); err != nil {
					return err
				}
			}
			after = trials[n-1].ID
			return nil
		})
		if err != nil {
			return added, fmt.Errorf("backfilling the eligibility history: %w", err)
		}
		if n == 0 {
			return added, store.New(s.pool).EndBackfill(ctx)
		}
		added += n
	}
}
